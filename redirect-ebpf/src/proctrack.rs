//! Process lifecycle tracepoints: exec, fork and exit of tasks in the hooked cgroup.
//!
//! Only the `sched` tracepoints' documented fields are read (their offsets come from tracefs at
//! load time where they differ between kernels), never `task_struct`, so the object needs no BTF
//! relocations and loads on the older kernels CI runners use.

use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_probe_read_kernel_str_bytes,
        bpf_probe_read_user,
        generated::{
            bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_probe_read_kernel,
            bpf_probe_read_user_str,
        },
    },
    macros::tracepoint,
    programs::TracePointContext,
};
use redirect_ebpf::{
    ARG_MAX, ARGV_KEEP, ArgvBuf, ExecEvent, MAX_ARGS, PROC_EXEC, PROC_EXIT, PROC_FORK, ProcEvent,
};

use crate::{
    ARGV_SCRATCH, CGROUP_ID, EXEC_ARGV, FORK_CHILD_PID_OFFSET, LOST_EVENTS, PROC_EVENTS, global,
};

/// Deepest cgroup nesting searched for the hooked cgroup among the current task's ancestors.
const MAX_CGROUP_DEPTH: i32 = 32;

/// Is the current task in the hooked cgroup or one below it? The hooked cgroup's absolute
/// level is not known when Warden itself runs in a cgroup namespace, so every level is tried.
#[inline(always)]
fn in_hooked_cgroup() -> bool {
    let id = global(&CGROUP_ID);
    // SAFETY: helpers without pointer arguments.
    if unsafe { bpf_get_current_cgroup_id() } == id {
        return true;
    }
    for level in 0..MAX_CGROUP_DEPTH {
        // SAFETY: as above. Past the task's own depth the helper returns 0.
        let ancestor = unsafe { bpf_get_current_ancestor_cgroup_id(level) };
        if ancestor == id {
            return true;
        }
        if ancestor == 0 {
            break;
        }
    }
    false
}

#[inline(always)]
pub fn count_lost() {
    if let Some(n) = LOST_EVENTS.get_ptr_mut(0) {
        // SAFETY: this CPU's slot of a per-CPU array; no other writer runs on it concurrently.
        unsafe { *n += 1 };
    }
}

/// What an exec event carries besides the ids.
struct ExecInfo<'a> {
    ctx: &'a TracePointContext,
    /// The tracepoint's `__data_loc` word for `filename`.
    filename_loc: u32,
    /// The thread that called exec (its arguments are filed under this id).
    caller: u32,
}

#[inline(always)]
fn fill_head(ev: *mut ProcEvent, kind: u32, pid: u32, tgid: u32) {
    // SAFETY: `ev` points to reserved ring buffer memory the size of a ProcEvent.
    unsafe {
        (*ev).kind = kind;
        (*ev).pid = pid;
        (*ev).tgid = tgid;
        (*ev)._pad = 0;
        (*ev).comm = bpf_get_current_comm().unwrap_or([0; 16]);
    }
}

/// Fork and exit: the 32-byte header only.
#[inline(always)]
fn emit(kind: u32, pid: u32, tgid: u32) {
    let Some(mut entry) = PROC_EVENTS.reserve::<ProcEvent>(0) else {
        count_lost();
        return;
    };
    fill_head(entry.as_mut_ptr(), kind, pid, tgid);
    entry.submit(0);
}

/// Exec: the header, the path and the arguments captured at `sys_enter_execve`.
#[inline(always)]
fn emit_exec(pid: u32, exec: ExecInfo<'_>) {
    let Some(mut entry) = PROC_EVENTS.reserve::<ExecEvent>(0) else {
        count_lost();
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points to reserved ring buffer memory the size of an ExecEvent.
    unsafe {
        fill_head(&raw mut (*ev).head, PROC_EXEC, pid, exec.caller);
        (*ev).filename[0] = 0;
        (*ev).argv.len = 0;
        (*ev).argv.argc = 0;
        // `__data_loc`: low 16 bits are the offset from the record start, high 16 the length.
        let loc = exec.filename_loc;
        let src = (exec.ctx.as_ptr() as *const u8).add((loc & 0xffff) as usize);
        let _ = bpf_probe_read_kernel_str_bytes(src, &mut (*ev).filename);
        if let Some(argv) = EXEC_ARGV.get_ptr(&exec.caller) {
            let dst = &raw mut (*ev).argv;
            let copied = bpf_probe_read_kernel(
                dst.cast(),
                core::mem::size_of::<ArgvBuf>() as u32,
                argv.cast(),
            );
            if copied != 0 {
                (*ev).argv.len = 0;
            }
            let _ = EXEC_ARGV.remove(&exec.caller);
        }
    }
    entry.submit(0);
}

/// Files the arguments of an exec about to happen under the calling thread's id.
#[inline(always)]
fn capture_argv(argv: *const *const u8) {
    let Some(buf) = ARGV_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: `buf` is this CPU's scratch value; user pointers are only read through helpers.
    unsafe {
        (*buf).len = 0;
        (*buf).argc = 0;
        let data = (&raw mut (*buf).data).cast::<u8>();
        let mut len: u32 = 0;
        for i in 0..MAX_ARGS {
            let Ok(arg) = bpf_probe_read_user(argv.add(i as usize)) else {
                break;
            };
            if arg.is_null() || len as usize >= ARGV_KEEP {
                break;
            }
            // The mask keeps the offset provably inside `data` for the verifier.
            let off = (len as usize) & (ARGV_KEEP - 1);
            let n = bpf_probe_read_user_str(data.add(off).cast(), ARG_MAX as u32, arg.cast());
            if n <= 0 {
                break;
            }
            len += n as u32;
            (*buf).argc = i + 1;
        }
        (*buf).len = len;
        let tid = bpf_get_current_pid_tgid() as u32;
        let _ = EXEC_ARGV.insert(&tid, &*buf, 0);
    }
}

#[tracepoint]
pub fn warden_sys_enter_execve(ctx: TracePointContext) -> u32 {
    if !in_hooked_cgroup() {
        return 0;
    }
    // syscalls/sys_enter_execve: filename at 16, argv at 24 (syscall records are stable).
    // SAFETY: fixed offset within the tracepoint record.
    if let Ok(argv) = unsafe { ctx.read_at::<u64>(24) } {
        capture_argv(argv as *const *const u8);
    }
    0
}

#[tracepoint]
pub fn warden_sys_enter_execveat(ctx: TracePointContext) -> u32 {
    if !in_hooked_cgroup() {
        return 0;
    }
    // syscalls/sys_enter_execveat: fd at 16, filename at 24, argv at 32.
    // SAFETY: fixed offset within the tracepoint record.
    if let Ok(argv) = unsafe { ctx.read_at::<u64>(32) } {
        capture_argv(argv as *const *const u8);
    }
    0
}

#[tracepoint]
pub fn warden_sched_fork(ctx: TracePointContext) -> u32 {
    if !in_hooked_cgroup() {
        return 0;
    }
    // SAFETY: the offset is read from this tracepoint's format file by the loader.
    let Ok(child) = (unsafe { ctx.read_at::<i32>(global(&FORK_CHILD_PID_OFFSET) as usize) }) else {
        return 0;
    };
    // The current task is the parent; report its process id, not its thread id.
    let parent_tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    emit(PROC_FORK, child as u32, parent_tgid);
    0
}

#[tracepoint]
pub fn warden_sched_exec(ctx: TracePointContext) -> u32 {
    if !in_hooked_cgroup() {
        return 0;
    }
    // sched_process_exec: __data_loc filename at 8, pid at 12, old_pid at 16 (stable since 3.x).
    // SAFETY: fixed offsets within the tracepoint record.
    let (Ok(loc), Ok(old_pid)) = (unsafe { ctx.read_at::<u32>(8) }, unsafe {
        ctx.read_at::<i32>(16)
    }) else {
        return 0;
    };
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let exec = ExecInfo {
        ctx: &ctx,
        filename_loc: loc,
        caller: old_pid as u32,
    };
    emit_exec(tgid, exec);
    0
}

#[tracepoint]
pub fn warden_sched_exit(_ctx: TracePointContext) -> u32 {
    if !in_hooked_cgroup() {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    emit(PROC_EXIT, pid_tgid as u32, (pid_tgid >> 32) as u32);
    0
}
