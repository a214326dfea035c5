//! The proxy-wasm ABI 0.2.1 hostcalls (module `env`), with Envoy's semantics.
//! See HOSTCALLS.md for the list and the differences from Envoy.

use crate::headers::HeaderMap;
use crate::state::*;
use crate::types::status::*;
use crate::types::*;
use std::time::Duration;
use wasmtime::{format_err, Caller, Linker, Result};

type C<'a> = Caller<'a, VmState>;

/// Registers every hostcall; returns the names it defined.
pub(crate) fn link(
    linker: &mut Linker<VmState>,
    names: &mut Vec<(&'static str, &'static str)>,
) -> Result<()> {
    macro_rules! def {
        ($($name:ident),* $(,)?) => {
            $(
                linker.func_wrap("env", stringify!($name), $name)?;
                names.push(("env", stringify!($name)));
            )*
        };
    }
    def!(
        proxy_log,
        proxy_get_log_level,
        proxy_get_current_time_nanoseconds,
        proxy_set_tick_period_milliseconds,
        proxy_get_buffer_bytes,
        proxy_set_buffer_bytes,
        proxy_get_header_map_pairs,
        proxy_set_header_map_pairs,
        proxy_get_header_map_size,
        proxy_get_header_map_value,
        proxy_replace_header_map_value,
        proxy_remove_header_map_value,
        proxy_add_header_map_value,
        proxy_get_property,
        proxy_set_property,
        proxy_get_shared_data,
        proxy_set_shared_data,
        proxy_register_shared_queue,
        proxy_resolve_shared_queue,
        proxy_dequeue_shared_queue,
        proxy_enqueue_shared_queue,
        proxy_continue_stream,
        proxy_close_stream,
        proxy_send_local_response,
        proxy_http_call,
        proxy_get_status,
        proxy_grpc_call,
        proxy_grpc_stream,
        proxy_grpc_send,
        proxy_grpc_cancel,
        proxy_grpc_close,
        proxy_set_effective_context,
        proxy_call_foreign_function,
        proxy_done,
        proxy_define_metric,
        proxy_get_metric,
        proxy_record_metric,
        proxy_increment_metric,
    );
    // Only modules instrumented with `wasm-opt --log-execution` import it (profiling).
    linker.func_wrap("env", "log_execution", log_execution)?;
    names.push(("env", "log_execution"));
    Ok(())
}

/// One event of a module instrumented with `wasm-opt --log-execution` (a function entry or a
/// loop header): the fuel spent since the previous event is charged to the previous location.
fn log_execution(caller: C<'_>, id: i32) -> Result<()> {
    let left = caller.get_fuel().unwrap_or(0);
    let mut shared = caller.data().shared();
    if let Some((last, at)) = shared.execution_last {
        *shared.execution_profile.entry(last).or_default() += at.saturating_sub(left);
    }
    shared.execution_last = Some((id, left));
    Ok(())
}

// ---- guest memory -------------------------------------------------------

pub(crate) fn read(caller: &C<'_>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let memory = caller
        .data()
        .memory
        .ok_or_else(|| format_err!("module exports no memory"))?;
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    memory
        .data(caller)
        .get(ptr..ptr.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| format_err!("out-of-bounds read of {len} bytes at {ptr:#x}"))
}

pub(crate) fn write(caller: &mut C<'_>, ptr: i32, bytes: &[u8]) -> Result<()> {
    let memory = caller
        .data()
        .memory
        .ok_or_else(|| format_err!("module exports no memory"))?;
    let ptr = ptr as u32 as usize;
    memory
        .data_mut(caller)
        .get_mut(ptr..ptr.saturating_add(bytes.len()))
        .ok_or_else(|| format_err!("out-of-bounds write of {} bytes at {ptr:#x}", bytes.len()))?
        .copy_from_slice(bytes);
    Ok(())
}

pub(crate) fn write_u32(caller: &mut C<'_>, ptr: i32, value: u32) -> Result<()> {
    write(caller, ptr, &value.to_le_bytes())
}

fn write_u64(caller: &mut C<'_>, ptr: i32, value: u64) -> Result<()> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Copies `bytes` into memory the module allocates (`proxy_on_memory_allocate`)
/// and stores the pointer and size at `ptr_ptr` / `size_ptr`; empty data is
/// returned as a null pointer and size 0, as Envoy does.
fn return_bytes(caller: &mut C<'_>, bytes: &[u8], ptr_ptr: i32, size_ptr: i32) -> Result<()> {
    if bytes.is_empty() {
        write_u32(caller, ptr_ptr, 0)?;
        return write_u32(caller, size_ptr, 0);
    }
    let alloc = caller
        .data()
        .alloc
        .clone()
        .ok_or_else(|| format_err!("module exports no proxy_on_memory_allocate"))?;
    let ptr = alloc.call(&mut *caller, bytes.len() as i32)?;
    if ptr == 0 {
        return Err(format_err!(
            "proxy_on_memory_allocate({}) returned null",
            bytes.len()
        ));
    }
    write(caller, ptr, bytes)?;
    write_u32(caller, ptr_ptr, ptr as u32)?;
    write_u32(caller, size_ptr, bytes.len() as u32)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---- logs, time, timers ---------------------------------------------------

fn proxy_log(caller: C<'_>, level: i32, ptr: i32, len: i32) -> Result<i32> {
    let Some(level) = LogLevel::from_i32(level) else {
        return Ok(BAD_ARGUMENT);
    };
    let message = text(&read(&caller, ptr, len)?);
    caller.data().log(level, LogSource::ProxyLog, message);
    Ok(OK)
}

fn proxy_get_log_level(mut caller: C<'_>, ret: i32) -> Result<i32> {
    let level = caller.data().shared().log_level as u32;
    write_u32(&mut caller, ret, level)?;
    Ok(OK)
}

fn proxy_get_current_time_nanoseconds(mut caller: C<'_>, ret: i32) -> Result<i32> {
    let now = caller.data().shared().now.as_nanos() as u64;
    write_u64(&mut caller, ret, now)?;
    Ok(OK)
}

fn proxy_set_tick_period_milliseconds(mut caller: C<'_>, period: i32) -> Result<i32> {
    let now = caller.data().shared().now;
    let state = caller.data_mut();
    let period = Duration::from_millis(period as u32 as u64);
    if period.is_zero() {
        state.tick_period = None;
    } else {
        state.tick_period = Some(period);
        state.next_tick = now + period;
    }
    Ok(OK)
}

// ---- buffers ------------------------------------------------------------------

fn buffer(state: &VmState, kind: i32) -> Option<Vec<u8>> {
    let stream = state.streams.get(&state.current);
    match kind {
        0 => stream?.request_body.clone(),
        1 => stream?.response_body.clone(),
        4 => state.call_response.as_ref().map(|r| r.body.clone()),
        6 | 7 => state
            .config_buffer
            .as_ref()
            .filter(|(k, _)| *k == kind)
            .map(|(_, b)| b.clone()),
        _ => None,
    }
}

fn proxy_get_buffer_bytes(
    mut caller: C<'_>,
    kind: i32,
    start: i32,
    max: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<i32> {
    if !(0..=8).contains(&kind) {
        return Ok(BAD_ARGUMENT);
    }
    let Some(bytes) = buffer(caller.data(), kind) else {
        return Ok(NOT_FOUND);
    };
    let start = start as u32 as usize;
    let max = max as u32 as usize;
    if start > bytes.len() {
        return Ok(BAD_ARGUMENT);
    }
    let end = start.saturating_add(max).min(bytes.len());
    return_bytes(&mut caller, &bytes[start..end], ptr_ptr, size_ptr)?;
    Ok(OK)
}

fn proxy_set_buffer_bytes(
    mut caller: C<'_>,
    kind: i32,
    start: i32,
    size: i32,
    ptr: i32,
    len: i32,
) -> Result<i32> {
    let data = read(&caller, ptr, len)?;
    let state = caller.data_mut();
    let current = state.current;
    let Some(stream) = state.streams.get_mut(&current) else {
        return Ok(NOT_FOUND);
    };
    let buf = match kind {
        0 => &mut stream.request_body,
        1 => &mut stream.response_body,
        _ => return Ok(BAD_ARGUMENT),
    };
    let Some(buf) = buf.as_mut() else {
        return Ok(NOT_FOUND);
    };
    let start = (start as u32 as usize).min(buf.len());
    let end = start.saturating_add(size as u32 as usize).min(buf.len());
    buf.splice(start..end, data);
    Ok(OK)
}

// ---- header maps --------------------------------------------------------------

/// The header map `kind` of the current context, or the status Envoy returns
/// when it does not exist now (`BadArgument`).
fn header_map(state: &mut VmState, kind: i32) -> Result<&mut HeaderMap, i32> {
    if kind == 6 || kind == 7 {
        let call = state.call_response.as_mut().ok_or(BAD_ARGUMENT)?;
        return Ok(if kind == 6 {
            &mut call.headers
        } else {
            &mut call.trailers
        });
    }
    let current = state.current;
    let stream = state.streams.get_mut(&current).ok_or(BAD_ARGUMENT)?;
    let map = match kind {
        0 => &mut stream.request_headers,
        1 => &mut stream.request_trailers,
        2 => &mut stream.response_headers,
        3 => &mut stream.response_trailers,
        _ => return Err(BAD_ARGUMENT),
    };
    map.as_mut().ok_or(BAD_ARGUMENT)
}

fn proxy_get_header_map_pairs(
    mut caller: C<'_>,
    kind: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<i32> {
    let bytes = match header_map(caller.data_mut(), kind) {
        Ok(map) => map.serialize(),
        Err(status) => return Ok(status),
    };
    return_bytes(&mut caller, &bytes, ptr_ptr, size_ptr)?;
    Ok(OK)
}

fn proxy_set_header_map_pairs(mut caller: C<'_>, kind: i32, ptr: i32, len: i32) -> Result<i32> {
    let bytes = read(&caller, ptr, len)?;
    let Some(pairs) = HeaderMap::deserialize(&bytes) else {
        return Ok(BAD_ARGUMENT);
    };
    match header_map(caller.data_mut(), kind) {
        Ok(map) => *map = pairs,
        Err(status) => return Ok(status),
    }
    Ok(OK)
}

fn proxy_get_header_map_size(mut caller: C<'_>, kind: i32, ret: i32) -> Result<i32> {
    let size = match header_map(caller.data_mut(), kind) {
        Ok(map) => map.serialize().len() as u32,
        Err(status) => return Ok(status),
    };
    write_u32(&mut caller, ret, size)?;
    Ok(OK)
}

fn proxy_get_header_map_value(
    mut caller: C<'_>,
    kind: i32,
    kptr: i32,
    klen: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<i32> {
    let key = read(&caller, kptr, klen)?;
    let value = match header_map(caller.data_mut(), kind) {
        Ok(map) => match map.get(&key) {
            Some(v) => v.to_vec(),
            None => return Ok(NOT_FOUND),
        },
        Err(status) => return Ok(status),
    };
    return_bytes(&mut caller, &value, ptr_ptr, size_ptr)?;
    Ok(OK)
}

fn proxy_replace_header_map_value(
    mut caller: C<'_>,
    kind: i32,
    kptr: i32,
    klen: i32,
    vptr: i32,
    vlen: i32,
) -> Result<i32> {
    let key = read(&caller, kptr, klen)?;
    let value = read(&caller, vptr, vlen)?;
    Ok(match header_map(caller.data_mut(), kind) {
        Ok(map) => {
            map.replace(key, value);
            OK
        }
        Err(status) => status,
    })
}

fn proxy_remove_header_map_value(
    mut caller: C<'_>,
    kind: i32,
    kptr: i32,
    klen: i32,
) -> Result<i32> {
    let key = read(&caller, kptr, klen)?;
    Ok(match header_map(caller.data_mut(), kind) {
        Ok(map) => {
            map.remove(key);
            OK
        }
        Err(status) => status,
    })
}

fn proxy_add_header_map_value(
    mut caller: C<'_>,
    kind: i32,
    kptr: i32,
    klen: i32,
    vptr: i32,
    vlen: i32,
) -> Result<i32> {
    let key = read(&caller, kptr, klen)?;
    let value = read(&caller, vptr, vlen)?;
    Ok(match header_map(caller.data_mut(), kind) {
        Ok(map) => {
            map.add(key, value);
            OK
        }
        Err(status) => status,
    })
}

// ---- properties -----------------------------------------------------------------

/// Joins the `\0`-separated path into a dotted name: `source\0address` and
/// `source.address` both name `source.address`.
fn property_name(path: &[u8]) -> String {
    text(path)
        .split('\0')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

fn int(value: i64) -> Vec<u8> {
    value.to_le_bytes().to_vec()
}

fn port_of(address: &str) -> Option<i64> {
    address.rsplit_once(':')?.1.parse().ok()
}

pub(crate) fn property(state: &VmState, name: &str) -> Option<Vec<u8>> {
    let shared = state.shared();
    let stream = state.streams.get(&state.current);
    if let Some(value) = stream.and_then(|s| s.info.properties.get(name)) {
        return Some(value.clone());
    }
    if let Some(value) = state
        .root_properties
        .get(name)
        .or_else(|| shared.properties.get(name))
    {
        return Some(value.clone());
    }
    match name {
        "plugin_name" => return Some(shared.plugin_name.clone().into_bytes()),
        "plugin_root_id" => return Some(shared.root_id.clone().into_bytes()),
        "plugin_vm_id" => return Some(shared.vm_id.clone().into_bytes()),
        _ => {}
    }
    let stream = stream?;
    let req = stream.request_headers.as_ref();
    let header = |h: &str| req.and_then(|m| m.get(h)).map(<[u8]>::to_vec);
    let path = || header(":path").unwrap_or_default();
    Some(match name {
        "source.address" => stream.info.source.clone().into_bytes(),
        "source.port" => int(port_of(&stream.info.source)?),
        "destination.address" => stream.info.destination.clone().into_bytes(),
        "destination.port" => int(port_of(&stream.info.destination)?),
        "request.path" => path(),
        "request.url_path" => {
            let p = path();
            p.split(|b| *b == b'?').next().unwrap_or_default().to_vec()
        }
        "request.query" => {
            let p = path();
            let at = p.iter().position(|b| *b == b'?')?;
            p[at + 1..].to_vec()
        }
        "request.host" => header(":authority")?,
        "request.method" => header(":method")?,
        "request.scheme" => header(":scheme")?,
        "request.id" => header("x-request-id")?,
        "request.referer" => header("referer")?,
        "request.useragent" => header("user-agent")?,
        "request.protocol" => b"HTTP/1.1".to_vec(),
        "request.time" => int(stream.info.start.as_nanos() as i64),
        "request.duration" => int(shared.now.saturating_sub(stream.info.start).as_nanos() as i64),
        "request.headers" => req?.serialize(),
        "request.size" => int(stream.request_body.as_ref().map_or(0, Vec::len) as i64),
        "response.headers" => stream.response_headers.as_ref()?.serialize(),
        "response.code_details" => {
            stream.response_headers.as_ref()?;
            stream.info.code_details.clone().into_bytes()
        }
        "response.code" => {
            let code = stream.response_headers.as_ref()?.get_str(":status")?;
            int(code.parse().ok()?)
        }
        "response.size" => int(stream.response_body.as_ref().map_or(0, Vec::len) as i64),
        _ => return None,
    })
}

fn proxy_get_property(
    mut caller: C<'_>,
    ptr: i32,
    len: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<i32> {
    let name = property_name(&read(&caller, ptr, len)?);
    let Some(value) = property(caller.data(), &name) else {
        return Ok(NOT_FOUND);
    };
    return_bytes(&mut caller, &value, ptr_ptr, size_ptr)?;
    Ok(OK)
}

fn proxy_set_property(mut caller: C<'_>, ptr: i32, len: i32, vptr: i32, vlen: i32) -> Result<i32> {
    let name = property_name(&read(&caller, ptr, len)?);
    let value = read(&caller, vptr, vlen)?;
    let state = caller.data_mut();
    let current = state.current;
    match state.streams.get_mut(&current) {
        Some(stream) => stream.info.properties.insert(name, value),
        None => state.root_properties.insert(name, value),
    };
    Ok(OK)
}

// ---- shared data and queues -------------------------------------------------------

fn proxy_get_shared_data(
    mut caller: C<'_>,
    kptr: i32,
    klen: i32,
    ptr_ptr: i32,
    size_ptr: i32,
    cas_ptr: i32,
) -> Result<i32> {
    let key = read(&caller, kptr, klen)?;
    let entry = caller.data().shared().shared_data.get(&key).cloned();
    let Some((value, cas)) = entry else {
        return Ok(NOT_FOUND);
    };
    return_bytes(&mut caller, &value, ptr_ptr, size_ptr)?;
    write_u32(&mut caller, cas_ptr, cas)?;
    Ok(OK)
}

fn proxy_set_shared_data(
    caller: C<'_>,
    kptr: i32,
    klen: i32,
    vptr: i32,
    vlen: i32,
    cas: i32,
) -> Result<i32> {
    let key = read(&caller, kptr, klen)?;
    let value = read(&caller, vptr, vlen)?;
    let mut shared = caller.data().shared();
    let cas = cas as u32;
    if cas != 0 {
        if let Some((_, current)) = shared.shared_data.get(&key) {
            if *current != cas {
                return Ok(CAS_MISMATCH);
            }
        }
    }
    let next = shared.next_cas();
    shared.shared_data.insert(key, (value, next));
    Ok(OK)
}

fn proxy_register_shared_queue(mut caller: C<'_>, nptr: i32, nlen: i32, ret: i32) -> Result<i32> {
    let name = read(&caller, nptr, nlen)?;
    let (worker, context_id) = (caller.data().worker, caller.data().current);
    let token = {
        let mut shared = caller.data().shared();
        let key = (shared.vm_id.clone().into_bytes(), name);
        let next = shared.queue_tokens.len() as u32 + 1;
        let token = *shared.queue_tokens.entry(key).or_insert(next);
        let queue = shared.queues.entry(token).or_insert_with(|| Queue {
            owner_worker: worker,
            owner_context: context_id,
            items: Default::default(),
        });
        // The last VM to register a queue is the one told when it fills (as Envoy).
        queue.owner_worker = worker;
        queue.owner_context = context_id;
        token
    };
    write_u32(&mut caller, ret, token)?;
    Ok(OK)
}

fn proxy_resolve_shared_queue(
    mut caller: C<'_>,
    vptr: i32,
    vlen: i32,
    nptr: i32,
    nlen: i32,
    ret: i32,
) -> Result<i32> {
    let vm_id = read(&caller, vptr, vlen)?;
    let name = read(&caller, nptr, nlen)?;
    let token = caller
        .data()
        .shared()
        .queue_tokens
        .get(&(vm_id, name))
        .copied();
    let Some(token) = token else {
        return Ok(NOT_FOUND);
    };
    write_u32(&mut caller, ret, token)?;
    Ok(OK)
}

fn proxy_dequeue_shared_queue(
    mut caller: C<'_>,
    token: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<i32> {
    let item = {
        let mut shared = caller.data().shared();
        let Some(queue) = shared.queues.get_mut(&(token as u32)) else {
            return Ok(NOT_FOUND);
        };
        match queue.items.pop_front() {
            Some(item) => item,
            None => return Ok(EMPTY),
        }
    };
    return_bytes(&mut caller, &item, ptr_ptr, size_ptr)?;
    Ok(OK)
}

fn proxy_enqueue_shared_queue(caller: C<'_>, token: i32, vptr: i32, vlen: i32) -> Result<i32> {
    let value = read(&caller, vptr, vlen)?;
    let mut shared = caller.data().shared();
    let token = token as u32;
    let Some(queue) = shared.queues.get_mut(&token) else {
        return Ok(NOT_FOUND);
    };
    queue.items.push_back(value);
    let (worker, context_id) = (queue.owner_worker, queue.owner_context);
    shared.events.push_back(Event::QueueReady {
        worker,
        context_id,
        token,
    });
    Ok(OK)
}

// ---- stream control and local replies ------------------------------------------------

fn proxy_continue_stream(mut caller: C<'_>, kind: i32) -> Result<i32> {
    let state = caller.data_mut();
    let current = state.current;
    let Some(stream) = state.streams.get_mut(&current) else {
        return Ok(NOT_FOUND);
    };
    match kind {
        0 => stream.continued_request = true,
        1 => stream.continued_response = true,
        _ => return Ok(BAD_ARGUMENT),
    }
    Ok(OK)
}

fn proxy_close_stream(mut caller: C<'_>, kind: i32) -> Result<i32> {
    let state = caller.data_mut();
    let current = state.current;
    let Some(stream) = state.streams.get_mut(&current) else {
        return Ok(NOT_FOUND);
    };
    match kind {
        0 | 1 => stream.reset = true,
        _ => return Ok(BAD_ARGUMENT),
    }
    Ok(OK)
}

#[allow(clippy::too_many_arguments)]
fn proxy_send_local_response(
    mut caller: C<'_>,
    status_code: i32,
    dptr: i32,
    dlen: i32,
    bptr: i32,
    blen: i32,
    hptr: i32,
    hlen: i32,
    grpc_status: i32,
) -> Result<i32> {
    let details = text(&read(&caller, dptr, dlen)?);
    let body = read(&caller, bptr, blen)?;
    let Some(headers) = HeaderMap::deserialize(&read(&caller, hptr, hlen)?) else {
        return Ok(BAD_ARGUMENT);
    };
    let state = caller.data_mut();
    let current = state.current;
    let Some(stream) = state.streams.get_mut(&current) else {
        return Ok(NOT_FOUND);
    };
    stream.local_reply = Some(LocalReply {
        status: status_code as u32,
        details,
        body,
        headers,
        grpc_status,
    });
    Ok(OK)
}

// ---- HTTP callouts ----------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn proxy_http_call(
    mut caller: C<'_>,
    uptr: i32,
    ulen: i32,
    hptr: i32,
    hlen: i32,
    bptr: i32,
    blen: i32,
    tptr: i32,
    tlen: i32,
    timeout_ms: i32,
    token_ptr: i32,
) -> Result<i32> {
    let cluster = text(&read(&caller, uptr, ulen)?);
    let Some(headers) = HeaderMap::deserialize(&read(&caller, hptr, hlen)?) else {
        return Ok(BAD_ARGUMENT);
    };
    let body = read(&caller, bptr, blen)?;
    let Some(trailers) = HeaderMap::deserialize(&read(&caller, tptr, tlen)?) else {
        return Ok(BAD_ARGUMENT);
    };
    // Envoy needs these to build the request.
    if [":method", ":path", ":authority"]
        .iter()
        .any(|h| !headers.contains(h))
    {
        return Ok(BAD_ARGUMENT);
    }
    let timeout = match timeout_ms as u32 {
        0 => None,
        ms => Some(Duration::from_millis(ms as u64)),
    };
    let (worker, context_id, token) = {
        let state = caller.data_mut();
        let token = state.next_token;
        state.next_token += 1;
        (state.worker, state.current, token)
    };
    let (script, now) = {
        let mut shared = caller.data().shared();
        // An unknown cluster is a BadArgument in Envoy too.
        let Some(script) = shared.upstreams.get(&cluster).cloned() else {
            return Ok(BAD_ARGUMENT);
        };
        shared.http_calls.push(HttpCall {
            worker,
            context_id,
            token,
            cluster,
            headers,
            body,
            trailers,
            timeout,
        });
        (script, shared.now)
    };
    let (due, outcome) = match (script.kind, timeout) {
        (Scripted::Timeout, None) => (None, Scripted::Timeout),
        (Scripted::Timeout, Some(t)) => (Some(now + t), Scripted::Timeout),
        (_, Some(t)) if script.delay >= t => (Some(now + t), Scripted::Timeout),
        (kind, _) => (Some(now + script.delay), kind),
    };
    // A call that never times out and never answers stays pending until its
    // context goes away, as in Envoy.
    let due = due.unwrap_or(Duration::MAX);
    caller.data_mut().pending_calls.push(PendingCall {
        token,
        context_id,
        due,
        outcome,
    });
    write_u32(&mut caller, token_ptr, token)?;
    Ok(OK)
}

fn proxy_get_status(mut caller: C<'_>, code_ptr: i32, ptr_ptr: i32, size_ptr: i32) -> Result<i32> {
    let (code, message) = caller.data().status.clone();
    write_u32(&mut caller, code_ptr, code)?;
    return_bytes(&mut caller, &message, ptr_ptr, size_ptr)?;
    Ok(OK)
}

// ---- gRPC: not scripted; every call fails as an unreachable cluster would -------------

#[allow(clippy::too_many_arguments)]
fn proxy_grpc_call(
    _: C<'_>,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
) -> Result<i32> {
    Ok(INTERNAL_FAILURE)
}

#[allow(clippy::too_many_arguments)]
fn proxy_grpc_stream(
    _: C<'_>,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
    _: i32,
) -> Result<i32> {
    Ok(INTERNAL_FAILURE)
}

fn proxy_grpc_send(_: C<'_>, _token: i32, _ptr: i32, _len: i32, _end: i32) -> Result<i32> {
    Ok(NOT_FOUND)
}

fn proxy_grpc_cancel(_: C<'_>, _token: i32) -> Result<i32> {
    Ok(NOT_FOUND)
}

fn proxy_grpc_close(_: C<'_>, _token: i32) -> Result<i32> {
    Ok(NOT_FOUND)
}

// ---- contexts, foreign functions --------------------------------------------------------

fn proxy_set_effective_context(mut caller: C<'_>, context_id: i32) -> Result<i32> {
    let state = caller.data_mut();
    let id = context_id as u32;
    if id != state.root_id && !state.streams.contains_key(&id) {
        return Ok(BAD_ARGUMENT);
    }
    state.current = id;
    Ok(OK)
}

fn proxy_call_foreign_function(
    mut caller: C<'_>,
    nptr: i32,
    nlen: i32,
    aptr: i32,
    alen: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<i32> {
    let name = text(&read(&caller, nptr, nlen)?);
    let arguments = read(&caller, aptr, alen)?;
    let (worker, context_id) = (caller.data().worker, caller.data().current);
    let function = {
        let mut shared = caller.data().shared();
        let function = shared.foreign.get(&name).cloned();
        if function.is_none() && name != "clear_route_cache" {
            return Ok(NOT_FOUND);
        }
        shared.foreign_calls.push(ForeignCall {
            worker,
            context_id,
            name,
            arguments: arguments.clone(),
        });
        function
    };
    let result = match function {
        Some(f) => f(&arguments),
        None => Ok(None),
    };
    match result {
        Ok(bytes) => {
            return_bytes(
                &mut caller,
                bytes.as_deref().unwrap_or_default(),
                ptr_ptr,
                size_ptr,
            )?;
            Ok(OK)
        }
        Err(status) => Ok(status),
    }
}

fn proxy_done(mut caller: C<'_>) -> Result<i32> {
    caller.data_mut().done_called = true;
    Ok(OK)
}

// ---- metrics -----------------------------------------------------------------------------

fn proxy_define_metric(
    mut caller: C<'_>,
    kind: i32,
    nptr: i32,
    nlen: i32,
    ret: i32,
) -> Result<i32> {
    let kind = match kind {
        0 => MetricKind::Counter,
        1 => MetricKind::Gauge,
        2 => MetricKind::Histogram,
        _ => return Ok(BAD_ARGUMENT),
    };
    let name = text(&read(&caller, nptr, nlen)?);
    let id = caller.data().shared().define_metric(kind, &name);
    match id {
        Ok(id) => {
            write_u32(&mut caller, ret, id)?;
            Ok(OK)
        }
        Err(status) => Ok(status),
    }
}

fn proxy_get_metric(mut caller: C<'_>, id: i32, ret: i32) -> Result<i32> {
    let value = {
        let mut shared = caller.data().shared();
        match shared.metric_mut(id as u32).map(|m| &m.value) {
            None => return Ok(NOT_FOUND),
            Some(MetricValue::Histogram(_)) => return Ok(BAD_ARGUMENT),
            Some(v) => v.value(),
        }
    };
    write_u64(&mut caller, ret, value)?;
    Ok(OK)
}

fn proxy_record_metric(caller: C<'_>, id: i32, value: i64) -> Result<i32> {
    let mut shared = caller.data().shared();
    let Some(metric) = shared.metric_mut(id as u32) else {
        return Ok(NOT_FOUND);
    };
    let value = value as u64;
    match &mut metric.value {
        MetricValue::Counter(v) => *v = v.wrapping_add(value),
        MetricValue::Gauge(v) => *v = value,
        MetricValue::Histogram(samples) => samples.push(value),
    }
    Ok(OK)
}

fn proxy_increment_metric(caller: C<'_>, id: i32, offset: i64) -> Result<i32> {
    let mut shared = caller.data().shared();
    let Some(metric) = shared.metric_mut(id as u32) else {
        return Ok(NOT_FOUND);
    };
    match &mut metric.value {
        MetricValue::Counter(v) if offset > 0 => *v = v.wrapping_add(offset as u64),
        MetricValue::Counter(_) => return Ok(BAD_ARGUMENT),
        MetricValue::Gauge(v) if offset >= 0 => *v = v.saturating_add(offset as u64),
        MetricValue::Gauge(v) => *v = v.saturating_sub(offset.unsigned_abs()),
        MetricValue::Histogram(_) => return Ok(NOT_FOUND),
    }
    Ok(OK)
}
