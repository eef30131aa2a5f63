//! Unit tests of the policy module, one file per part: the endpoint syntax, `decide`, the index
//! against a linear reference, and the policy file.

mod decide;
mod endpoint;
mod file;
mod index;
mod robust;
