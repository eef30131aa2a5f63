//! A bounds-checked cursor over a byte slice.
//!
//! Every parser in this crate reads through [`Reader`] instead of indexing or
//! slicing directly, so that running off the end of a buffer is an ordinary
//! `None` the parser turns into "need more" or "malformed", never a panic.

/// A cursor over borrowed bytes; every read either succeeds whole or returns
/// `None` and leaves the cursor where it was.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf }
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Takes exactly `n` bytes, or nothing if fewer remain.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        self.rest = tail;
        Some(head)
    }

    /// Takes up to `n` bytes: all of them if fewer remain.
    pub(crate) fn take_up_to(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        self.take(n).unwrap_or_default()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (&first, tail) = self.rest.split_first()?;
        self.rest = tail;
        Some(first)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        let bytes = self.take(2)?;
        Some(u16::from_be_bytes(bytes.try_into().ok()?))
    }

    pub(crate) fn u24(&mut self) -> Option<u32> {
        let bytes = self.take(3)?;
        let mut wide = [0u8; 4];
        wide.get_mut(1..)?.copy_from_slice(bytes);
        Some(u32::from_be_bytes(wide))
    }

    /// Reads a vector with a one-byte length prefix (RFC 8446 §3.4) and returns
    /// a reader over its contents.
    pub(crate) fn sub_u8(&mut self) -> Option<Reader<'a>> {
        let mut probe = *self;
        let len = probe.u8()?;
        let body = probe.take(usize::from(len))?;
        *self = probe;
        Some(Reader::new(body))
    }

    /// Reads a vector with a two-byte length prefix (RFC 8446 §3.4) and returns
    /// a reader over its contents.
    pub(crate) fn sub_u16(&mut self) -> Option<Reader<'a>> {
        let mut probe = *self;
        let len = probe.u16()?;
        let body = probe.take(usize::from(len))?;
        *self = probe;
        Some(Reader::new(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_integers() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(r.u8(), Some(1));
        assert_eq!(r.u16(), Some(0x0203));
        assert_eq!(r.u24(), Some(0x040506));
        assert!(r.is_empty());
        assert_eq!(r.u8(), None);
    }

    #[test]
    fn short_reads_leave_the_cursor_in_place() {
        let mut r = Reader::new(&[3, 1, 2]);
        assert!(r.sub_u8().is_none());
        assert_eq!(r.rest(), &[3, 1, 2]);
        assert_eq!(r.take(4), None);
        assert_eq!(r.take_up_to(9), &[3, 1, 2]);
        assert!(r.is_empty());
    }

    #[test]
    fn sub_readers_cover_exactly_the_prefixed_bytes() {
        let mut r = Reader::new(&[0, 2, 7, 8, 9]);
        let sub = r.sub_u16().map(|s| s.rest());
        assert_eq!(sub, Some(&[7u8, 8][..]));
        assert_eq!(r.rest(), &[9]);
    }
}
