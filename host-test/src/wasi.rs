//! The WASI preview1 imports a wasm32-wasip1 filter needs, deterministic:
//! no arguments or environment, clocks read the virtual clock, `random_get`
//! is a seeded PRNG, stdout/stderr become log lines, files do not exist.

use crate::abi::{read, write, write_u32};
use crate::state::VmState;
use crate::types::{LogLevel, LogSource};
use wasmtime::{format_err, Caller, Linker, Result};

type C<'a> = Caller<'a, VmState>;

const MODULE: &str = "wasi_snapshot_preview1";
const SUCCESS: i32 = 0;
const BADF: i32 = 8;
const INVAL: i32 = 28;
const NOSYS: i32 = 52;
const SPIPE: i32 = 70;

/// Error raised by `proc_exit`; the hook that called it fails with this message.
#[derive(Debug)]
pub struct ProcExit(pub i32);

impl std::fmt::Display for ProcExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "proc_exit({}) called", self.0)
    }
}

impl std::error::Error for ProcExit {}

pub(crate) fn link(
    linker: &mut Linker<VmState>,
    names: &mut Vec<(&'static str, &'static str)>,
) -> Result<()> {
    macro_rules! def {
        ($($name:ident),* $(,)?) => {
            $(
                linker.func_wrap(MODULE, stringify!($name), $name)?;
                names.push((MODULE, stringify!($name)));
            )*
        };
    }
    def!(
        args_get,
        args_sizes_get,
        environ_get,
        environ_sizes_get,
        clock_res_get,
        clock_time_get,
        fd_write,
        fd_read,
        fd_close,
        fd_seek,
        fd_fdstat_get,
        fd_prestat_get,
        fd_prestat_dir_name,
        random_get,
        proc_exit,
        sched_yield,
        poll_oneoff,
    );
    Ok(())
}

fn args_get(_: C<'_>, _argv: i32, _buf: i32) -> Result<i32> {
    Ok(SUCCESS)
}

fn args_sizes_get(mut caller: C<'_>, count: i32, size: i32) -> Result<i32> {
    write_u32(&mut caller, count, 0)?;
    write_u32(&mut caller, size, 0)?;
    Ok(SUCCESS)
}

fn environ_get(_: C<'_>, _environ: i32, _buf: i32) -> Result<i32> {
    Ok(SUCCESS)
}

fn environ_sizes_get(mut caller: C<'_>, count: i32, size: i32) -> Result<i32> {
    write_u32(&mut caller, count, 0)?;
    write_u32(&mut caller, size, 0)?;
    Ok(SUCCESS)
}

fn clock_res_get(mut caller: C<'_>, _id: i32, ret: i32) -> Result<i32> {
    write(&mut caller, ret, &1_000u64.to_le_bytes())?;
    Ok(SUCCESS)
}

/// Realtime (0) is the virtual wall clock; the monotonic and CPU clocks count
/// virtual time since the host started.
fn clock_time_get(mut caller: C<'_>, id: i32, _precision: i64, ret: i32) -> Result<i32> {
    let nanos = {
        let shared = caller.data().shared();
        match id {
            0 => shared.now.as_nanos() as u64,
            1..=3 => (shared.now - shared.start).as_nanos() as u64,
            _ => return Ok(INVAL),
        }
    };
    write(&mut caller, ret, &nanos.to_le_bytes())?;
    Ok(SUCCESS)
}

fn fd_write(mut caller: C<'_>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> Result<i32> {
    if fd != 1 && fd != 2 {
        return Ok(BADF);
    }
    let mut data = Vec::new();
    for i in 0..iovs_len {
        let iov = read(&caller, iovs.wrapping_add(i * 8), 8)?;
        let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
        let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
        data.extend(read(&caller, ptr, len)?);
    }
    write_u32(&mut caller, nwritten, data.len() as u32)?;
    let state = caller.data_mut();
    let buffer = &mut state.stdio[fd as usize - 1];
    buffer.extend_from_slice(&data);
    let mut lines = Vec::new();
    while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = buffer.drain(..=end).collect();
        lines.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
    }
    let (level, source) = if fd == 1 {
        (LogLevel::Info, LogSource::Stdout)
    } else {
        (LogLevel::Error, LogSource::Stderr)
    };
    for line in lines {
        state.log(level, source, line);
    }
    Ok(SUCCESS)
}

fn fd_read(_: C<'_>, _fd: i32, _iovs: i32, _len: i32, _nread: i32) -> Result<i32> {
    Ok(BADF)
}

fn fd_close(_: C<'_>, _fd: i32) -> Result<i32> {
    Ok(BADF)
}

fn fd_seek(_: C<'_>, fd: i32, _offset: i64, _whence: i32, _ret: i32) -> Result<i32> {
    Ok(if (0..=2).contains(&fd) { SPIPE } else { BADF })
}

/// stdin/stdout/stderr are character devices; nothing else is open.
fn fd_fdstat_get(mut caller: C<'_>, fd: i32, ret: i32) -> Result<i32> {
    if !(0..=2).contains(&fd) {
        return Ok(BADF);
    }
    let mut stat = [0u8; 24];
    stat[0] = 2; // filetype: character device
    write(&mut caller, ret, &stat)?;
    Ok(SUCCESS)
}

fn fd_prestat_get(_: C<'_>, _fd: i32, _ret: i32) -> Result<i32> {
    Ok(BADF)
}

fn fd_prestat_dir_name(_: C<'_>, _fd: i32, _path: i32, _len: i32) -> Result<i32> {
    Ok(BADF)
}

fn random_get(mut caller: C<'_>, buf: i32, len: i32) -> Result<i32> {
    let mut bytes = Vec::with_capacity(len as u32 as usize);
    while bytes.len() < len as u32 as usize {
        bytes.extend_from_slice(&caller.data_mut().next_random().to_le_bytes());
    }
    bytes.truncate(len as u32 as usize);
    write(&mut caller, buf, &bytes)?;
    Ok(SUCCESS)
}

fn proc_exit(_: C<'_>, code: i32) -> Result<()> {
    Err(format_err!(ProcExit(code)))
}

fn sched_yield(_: C<'_>) -> Result<i32> {
    Ok(SUCCESS)
}

fn poll_oneoff(_: C<'_>, _in: i32, _out: i32, _n: i32, _nevents: i32) -> Result<i32> {
    Ok(NOSYS)
}
