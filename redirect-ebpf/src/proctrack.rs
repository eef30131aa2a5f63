//! Process lifecycle tracepoints: exec, fork and exit of tasks in the hooked cgroup.
//!
//! Only the `sched` tracepoints' documented fields are read (their offsets come from tracefs at
//! load time where they differ between kernels), never `task_struct`, so the object needs no BTF
//! relocations and loads on the older kernels CI runners use.

use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_probe_read_kernel_str_bytes,
        generated::{bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id},
    },
    macros::tracepoint,
    programs::TracePointContext,
};
use redirect_ebpf::{PROC_EXEC, PROC_EXIT, PROC_FORK, ProcEvent};

use crate::{CGROUP_ID, CGROUP_LEVEL, FORK_CHILD_PID_OFFSET, PROC_EVENTS, global};

/// Is the current task in the hooked cgroup or one below it?
#[inline(always)]
fn in_hooked_cgroup() -> bool {
    let id = global(&CGROUP_ID);
    // SAFETY: helpers without pointer arguments.
    unsafe {
        bpf_get_current_cgroup_id() == id
            || bpf_get_current_ancestor_cgroup_id(global(&CGROUP_LEVEL) as i32) == id
    }
}

#[inline(always)]
fn emit(kind: u32, pid: u32, tgid: u32, filename_loc: Option<(&TracePointContext, u32)>) {
    let Some(mut entry) = PROC_EVENTS.reserve::<ProcEvent>(0) else {
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points to reserved ring buffer memory the size of a ProcEvent.
    unsafe {
        (*ev).kind = kind;
        (*ev).pid = pid;
        (*ev).tgid = tgid;
        (*ev)._pad = 0;
        (*ev).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        (*ev).filename[0] = 0;
        if let Some((ctx, loc)) = filename_loc {
            // `__data_loc`: low 16 bits are the offset from the record start, high 16 the length.
            let src = (ctx.as_ptr() as *const u8).add((loc & 0xffff) as usize);
            let _ = bpf_probe_read_kernel_str_bytes(src, &mut (*ev).filename);
        }
    }
    entry.submit(0);
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
    emit(PROC_FORK, child as u32, parent_tgid, None);
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
    emit(PROC_EXEC, tgid, old_pid as u32, Some((&ctx, loc)));
    0
}

#[tracepoint]
pub fn warden_sched_exit(_ctx: TracePointContext) -> u32 {
    if !in_hooked_cgroup() {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    emit(PROC_EXIT, pid_tgid as u32, (pid_tgid >> 32) as u32, None);
    0
}
