//! Every hostcall the host implements, exercised through a real module: the
//! probe filter (host-test/probe-filter), driven by its plugin configuration.
mod common;

use serde_json::{json, Value};
use sluice_wasm_host::{
    status, Action, ConfigRejected, HeaderChange, Host, HostBuilder, LogLevel, MetricValue, Plugin,
    ScriptedResponse, DEFAULT_START,
};
use std::time::{Duration, UNIX_EPOCH};

fn probe(config: Value) -> HostBuilder {
    common::plugin("probe.wasm")
        .host()
        .plugin_config(config.to_string())
}

fn host(config: Value) -> Host {
    probe(config).build().unwrap()
}

fn bytes(out: &sluice_wasm_host::Outcome, name: &str) -> Vec<u8> {
    out.request_headers
        .get(name)
        .unwrap_or_else(|| panic!("no request header {name}: {:?}", out.request_headers))
        .to_vec()
}

#[test]
fn request_headers_get_set_add_remove_as_maps_and_single_values() {
    let mut host = host(json!({"request": [
        {"op": "set", "name": "x-a", "value": "1"},
        {"op": "add", "name": "x-b", "value": "2"},
        {"op": "remove", "name": "x-drop"},
        {"op": "echo", "from": "x-bin", "to": "x-echo"},
        {"op": "echo", "from": "x-dup", "to": "x-first"},
        {"op": "echo", "from": "x-absent", "to": "x-absent-echo"},
        {"op": "pairs", "to": "x-pairs"},
        {"op": "append_map", "name": "x-appended", "value": "yes"},
    ]}));
    let out = host
        .request()
        .header("x-a", "old")
        .header("X-A", "older")
        .header("x-drop", "1")
        .header("x-bin", [0xff, 0xfe, b'a'])
        .header("x-dup", "first")
        .header("x-dup", "second")
        .send()
        .unwrap();
    assert!(out.forwarded);
    assert_eq!(
        out.request_headers.get_all("x-a"),
        vec![&b"1"[..]],
        "replace drops every old value"
    );
    assert_eq!(out.request_header("x-b").as_deref(), Some("2"));
    assert!(!out.request_headers.contains("x-drop"));
    assert_eq!(
        bytes(&out, "x-echo"),
        vec![0xff, 0xfe, b'a'],
        "non-UTF-8 values survive the round trip"
    );
    assert_eq!(
        out.request_header("x-first").as_deref(),
        Some("first"),
        "a repeated header reads as its first value"
    );
    assert_eq!(out.request_header("x-absent-echo").as_deref(), Some("none"));
    let pairs = out.request_header("x-pairs").unwrap();
    assert!(
        pairs.starts_with("12;:authority=example.com,:path=/,:method=GET,:scheme=http,"),
        "{pairs}"
    );
    assert!(pairs.contains("x-dup=first,x-dup=second"), "{pairs}");
    assert_eq!(out.request_header("x-appended").as_deref(), Some("yes"));
    assert!(out.request_changes().contains(&HeaderChange::Removed {
        name: "x-drop".into()
    }));
    assert!(out.request_changes().contains(&HeaderChange::Set {
        name: "x-a".into(),
        values: vec![b"1".to_vec()]
    }));
}

#[test]
fn response_headers_are_read_and_changed_in_the_response_phase() {
    let mut host = host(json!({"response": [
        {"op": "set", "name": "x-resp", "value": "1"},
        {"op": "remove", "name": "server"},
        {"op": "echo", "from": ":status", "to": "x-status"},
        {"op": "pairs", "to": "x-count"},
    ]}));
    let out = host
        .request()
        .upstream_status(201)
        .upstream_header("server", "upstream")
        .upstream_body("hello")
        .send()
        .unwrap();
    assert_eq!(out.status(), Some(201));
    assert_eq!(out.response_header("x-resp").as_deref(), Some("1"));
    assert_eq!(out.response_header("x-status").as_deref(), Some("201"));
    // Operations run in order: the map read last sees the earlier changes.
    assert_eq!(
        out.response_header("x-count").as_deref(),
        Some("3;:status=201,x-resp=1,x-status=201")
    );
    assert!(!out.response_headers.contains("server"));
    assert_eq!(out.response_body, b"hello");
    assert!(!out.request_headers.contains("x-resp"));
}

#[test]
fn bodies_pass_through_and_every_lifecycle_hook_runs_once() {
    let mut host = host(json!({}));
    let out = host
        .request()
        .method("POST")
        .body("payload")
        .upstream_body("reply")
        .send()
        .unwrap();
    let hooks: Vec<&str> = out.fuel.hooks.iter().map(|h| h.hook).collect();
    assert_eq!(
        hooks,
        [
            "proxy_on_context_create",
            "proxy_on_request_headers",
            "proxy_on_request_body",
            "proxy_on_response_headers",
            "proxy_on_response_body",
            "proxy_on_log",
            "proxy_on_done",
            "proxy_on_delete"
        ]
    );
    assert_eq!(out.actions.len(), 4);
    assert!(out.actions.iter().all(|(_, a)| *a == Action::Continue));
    assert_eq!(out.response_body, b"reply");
    assert_eq!(out.metric_delta("probe.logged"), 1, "on_log ran once");
}

#[test]
fn shared_data_is_shared_across_workers_with_cas() {
    let mut host = probe(json!({"request": [
        {"op": "shared_set", "key": "k", "value": "v1", "to": "x-set1"},
        {"op": "shared_set", "key": "k", "value": "v2", "cas": "current", "to": "x-set2"},
        {"op": "shared_set", "key": "k", "value": "v3", "cas": "stale", "to": "x-set3"},
        {"op": "shared_get", "key": "k", "to": "x-get"},
        {"op": "shared_get", "key": "nothing", "to": "x-missing"},
    ]}))
    .workers(2)
    .build()
    .unwrap();
    let out = host.request().send().unwrap();
    assert_eq!(out.request_header("x-set1").as_deref(), Some("ok"));
    assert_eq!(out.request_header("x-set2").as_deref(), Some("ok"));
    assert_eq!(out.request_header("x-set3").as_deref(), Some("CasMismatch"));
    let (value, cas) = host.shared_data("k").unwrap();
    assert_eq!(value, b"v2");
    assert_eq!(out.request_header("x-get"), Some(format!("v2@{cas}")));
    assert_eq!(out.request_header("x-missing").as_deref(), Some("none"));

    host.set_shared_data("k", "from-outside");
    let (_, cas) = host.shared_data("k").unwrap();
    let other = host.request_on(1).send().unwrap();
    // Worker 1 sets v1 (cas ignored), then v2 with the CAS it just read.
    assert_eq!(other.request_header("x-set1").as_deref(), Some("ok"));
    assert_eq!(other.request_header("x-set2").as_deref(), Some("ok"));
    assert!(host.shared_data("k").unwrap().1 > cas);
}

#[test]
fn shared_queues_deliver_on_queue_ready_to_the_registering_vm() {
    let mut host = probe(json!({"queue": "jobs", "request": [
        {"op": "enqueue", "queue": "jobs", "value": "hello", "to": "x-enq"},
        {"op": "enqueue", "queue": "missing", "value": "x", "to": "x-enq-missing"},
    ]}))
    .workers(2)
    .build()
    .unwrap();
    let out = host.request_on(0).send().unwrap();
    assert_eq!(out.request_header("x-enq").as_deref(), Some("ok"));
    assert_eq!(
        out.request_header("x-enq-missing").as_deref(),
        Some("no_queue")
    );
    let delivered: Vec<_> = out
        .logs
        .iter()
        .filter(|l| l.message == "queue item: hello")
        .collect();
    assert_eq!(delivered.len(), 1, "{:?}", out.logs);
    assert_eq!(
        delivered[0].worker, 1,
        "the last VM to register the queue is told (as Envoy)"
    );
    assert_eq!(host.shared_data("probe.queue.last").unwrap().0, b"hello");
    assert_eq!(
        host.metric("probe.queue.items"),
        Some(MetricValue::Counter(1))
    );
    assert!(
        host.queue_items("jobs").is_empty(),
        "on_queue_ready drained it"
    );

    host.enqueue("jobs", "from-host").unwrap();
    assert_eq!(
        host.shared_data("probe.queue.last").unwrap().0,
        b"from-host"
    );
    assert!(host.enqueue("nope", "x").is_err());
}

#[test]
fn ticks_follow_the_virtual_clock_on_every_worker() {
    let mut host = probe(json!({"tick_ms": 1000, "on_tick": [{"op": "time", "to": "now"}]}))
        .workers(2)
        .build()
        .unwrap();
    assert_eq!(host.vm(0).tick_period(), Some(Duration::from_secs(1)));
    assert_eq!(
        host.metric("probe.ticks"),
        None,
        "no tick before time passes"
    );
    host.advance(Duration::from_millis(999)).unwrap();
    assert_eq!(host.metric("probe.ticks"), None);
    host.advance(Duration::from_millis(2501)).unwrap();
    assert_eq!(
        host.metric("probe.ticks"),
        Some(MetricValue::Counter(6)),
        "3 ticks on each of 2 workers"
    );
    let first_tick = DEFAULT_START + Duration::from_secs(1);
    let logs = host.logs();
    let times: Vec<&str> = logs
        .iter()
        .filter_map(|l| l.message.strip_prefix("now="))
        .collect();
    assert_eq!(times.len(), 6);
    assert_eq!(
        times[0],
        first_tick.as_nanos().to_string(),
        "on_tick sees the virtual time it fired at"
    );
    assert_eq!(
        host.now(),
        UNIX_EPOCH + DEFAULT_START + Duration::from_millis(3500)
    );
}

#[test]
fn dispatch_http_call_gets_the_scripted_response_and_resumes_the_request() {
    let mut host = host(json!({"request": [
        {"op": "dispatch", "cluster": "auth", "path": "/check", "timeout_ms": 1000, "pause": true, "to": "x-dispatch"},
    ]}));
    host.on_http_call("auth", ScriptedResponse::ok("granted").header("x-up", "1"));
    let out = host.request().send().unwrap();
    assert_eq!(out.actions[0], ("proxy_on_request_headers", Action::Pause));
    assert!(out.forwarded);
    assert_eq!(out.request_header("x-call-status").as_deref(), Some("200"));
    assert_eq!(
        out.request_header("x-call-body").as_deref(),
        Some("granted")
    );
    assert_eq!(out.request_header("x-call-headers").as_deref(), Some("2/2"));
    assert_eq!(out.request_header("x-call-error").as_deref(), Some("0:"));
    assert_eq!(out.http_calls.len(), 1);
    let call = &out.http_calls[0];
    assert_eq!(call.cluster, "auth");
    assert_eq!(call.headers.get_str(":path").as_deref(), Some("/check"));
    assert_eq!(call.timeout, Some(Duration::from_secs(1)));
    assert_eq!(
        out.request_header("x-call-token"),
        Some(call.token.to_string())
    );
    assert_eq!(
        host.now(),
        UNIX_EPOCH + DEFAULT_START,
        "an immediate response takes no virtual time"
    );
}

#[test]
fn dispatch_failures_timeouts_delays_and_unknown_clusters() {
    let config = |cluster: &str| json!({"request": [{"op": "dispatch", "cluster": cluster, "path": "/", "timeout_ms": 500, "pause": true, "to": "x-dispatch"}]});
    let mut failing = host(config("down"));
    failing.on_http_call("down", ScriptedResponse::fail());
    let out = failing.request().send().unwrap();
    assert_eq!(out.request_header("x-call-status").as_deref(), Some("none"));
    assert_eq!(out.request_header("x-call-headers").as_deref(), Some("0/0"));
    assert_eq!(
        out.request_header("x-call-error"),
        Some(format!("{}:reset", status::BROKEN_CONNECTION))
    );

    let mut slow = host(config("slow"));
    slow.on_http_call("slow", ScriptedResponse::timeout());
    let out = slow.request().send().unwrap();
    assert_eq!(out.request_header("x-call-status").as_deref(), Some("504"));
    assert_eq!(
        out.request_header("x-call-body").as_deref(),
        Some("upstream request timeout")
    );
    assert_eq!(
        slow.now(),
        UNIX_EPOCH + DEFAULT_START + Duration::from_millis(500),
        "the request waited for the timeout"
    );

    let mut late = host(config("late"));
    late.on_http_call(
        "late",
        ScriptedResponse::ok("late").after(Duration::from_millis(200)),
    );
    let out = late.request().send().unwrap();
    assert_eq!(out.request_header("x-call-body").as_deref(), Some("late"));
    assert_eq!(
        late.now(),
        UNIX_EPOCH + DEFAULT_START + Duration::from_millis(200)
    );
    late.on_http_call(
        "late",
        ScriptedResponse::ok("too late").after(Duration::from_secs(2)),
    );
    let out = late.request().send().unwrap();
    assert_eq!(
        out.request_header("x-call-status").as_deref(),
        Some("504"),
        "a delay past the timeout times out"
    );

    let mut unknown = host(config("nowhere"));
    let out = unknown.request().send().unwrap();
    assert_eq!(
        out.request_header("x-dispatch").as_deref(),
        Some("BadArgument")
    );
    assert_eq!(out.actions[0].1, Action::Continue);
}

#[test]
fn root_context_callouts_from_on_tick() {
    let mut host = host(json!({"tick_ms": 100, "on_tick": [
        {"op": "dispatch", "cluster": "config", "path": "/config", "timeout_ms": 50, "to": "dispatched"},
    ]}));
    host.on_http_call(
        "config",
        ScriptedResponse::ok("v2").after(Duration::from_millis(10)),
    );
    host.advance(Duration::from_millis(105)).unwrap();
    assert!(host
        .logs()
        .iter()
        .any(|l| l.message.starts_with("dispatched=token")));
    assert!(
        host.shared_data("probe.call.body").is_none(),
        "the response is due 10ms after the tick"
    );
    host.advance(Duration::from_millis(5)).unwrap();
    assert_eq!(host.shared_data("probe.call.body").unwrap().0, b"v2");
    assert!(host
        .logs()
        .iter()
        .any(|l| l.message == "call response: status=200 body=v2"));
}

#[test]
fn metrics_follow_envoy_semantics() {
    let mut host = probe(json!({"request": [
        {"op": "counter", "name": "c", "by": 1, "to": "x-c"},
        {"op": "counter", "name": "c", "by": 0, "to": "x-c0"},
        {"op": "gauge", "name": "g", "set": 10, "add": -3, "to": "x-g"},
        {"op": "histogram", "name": "h", "value": 5, "to": "x-h"},
    ]}))
    .workers(2)
    .build()
    .unwrap();
    let first = host.request().send().unwrap();
    let second = host.request_on(1).send().unwrap();
    let c1 = first.request_header("x-c").unwrap();
    let c2 = second.request_header("x-c").unwrap();
    let id = c1.split(';').next().unwrap();
    assert!(c1.ends_with(";inc=Ok(());value=1"), "{c1}");
    let id2 = c2.split(';').next().unwrap();
    assert_ne!(id, id2, "a new id per define call, as Envoy");
    assert_eq!(
        c2,
        format!("{id2};inc=Ok(());value=2"),
        "same name, one counter for all workers"
    );
    assert!(
        first
            .request_header("x-c0")
            .unwrap()
            .contains("inc=Err(BadArgument)"),
        "counters only go up"
    );
    assert!(first.request_header("x-g").unwrap().ends_with(";value=7"));
    assert!(
        first
            .request_header("x-h")
            .unwrap()
            .ends_with(";record=Ok(());get=BadArgument"),
        "histograms cannot be read back: {:?}",
        first.request_header("x-h")
    );
    assert_eq!(second.metric_delta("c"), 1);
    assert_eq!(host.metric("c"), Some(MetricValue::Counter(2)));
    assert_eq!(host.metric("h"), Some(MetricValue::Histogram(vec![5, 5])));
    assert_eq!(host.metric("probe.logged"), Some(MetricValue::Counter(2)));
}

#[test]
fn properties_envoy_provides_and_the_filter_sets() {
    let mut host = probe(json!({"request": [
        {"op": "property", "path": ["source", "address"], "to": "x-source"},
        {"op": "property", "path": ["source", "port"], "int": true, "to": "x-source-port"},
        {"op": "property", "path": ["destination", "address"], "to": "x-destination"},
        {"op": "property", "path": ["request", "time"], "int": true, "to": "x-time"},
        {"op": "property", "path": ["request", "path"], "to": "x-path"},
        {"op": "property", "path": ["request", "url_path"], "to": "x-url-path"},
        {"op": "property", "path": ["request", "query"], "to": "x-query"},
        {"op": "property", "path": ["request", "host"], "to": "x-host"},
        {"op": "property", "path": ["request", "method"], "to": "x-method"},
        {"op": "property", "path": ["plugin_name"], "to": "x-plugin"},
        {"op": "property", "path": ["node", "id"], "to": "x-node"},
        {"op": "property", "path": ["no", "such"], "to": "x-none"},
        {"op": "property", "path": ["route_name"], "to": "x-route"},
        {"op": "set_property", "path": ["filter_state", "mine"], "value": "set"},
        {"op": "property", "path": ["filter_state", "mine"], "to": "x-mine"},
    ], "response": [
        {"op": "property", "path": ["response", "code"], "int": true, "to": "x-code"},
    ]}))
    .plugin_name("probe")
    .property("node.id", "sidecar~10.0.0.1")
    .build()
    .unwrap();
    let at = UNIX_EPOCH + DEFAULT_START + Duration::from_secs(60);
    let out = host
        .request()
        .source("10.1.2.3:5555")
        .method("PUT")
        .authority("reviews")
        .path("/api/x?debug=1")
        .property("route_name", "r1")
        .at(at)
        .send()
        .unwrap();
    let h = |name: &str| out.request_header(name).unwrap();
    assert_eq!(h("x-source"), "10.1.2.3:5555");
    assert_eq!(h("x-source-port"), "5555");
    assert_eq!(h("x-destination"), "10.0.0.1:8080");
    assert_eq!(
        h("x-time"),
        at.duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            .to_string()
    );
    assert_eq!(h("x-path"), "/api/x?debug=1");
    assert_eq!(h("x-url-path"), "/api/x");
    assert_eq!(h("x-query"), "debug=1");
    assert_eq!(h("x-host"), "reviews");
    assert_eq!(h("x-method"), "PUT");
    assert_eq!(h("x-plugin"), "probe");
    assert_eq!(h("x-node"), "sidecar~10.0.0.1");
    assert_eq!(h("x-none"), "none");
    assert_eq!(h("x-route"), "r1");
    assert_eq!(h("x-mine"), "set");
    assert_eq!(out.response_header("x-code").as_deref(), Some("200"));
}

#[test]
fn logs_keep_their_level_and_the_host_filters_below_its_level() {
    let ops: Vec<Value> = (0..6)
        .map(|level| json!({"op": "log", "level": level, "message": format!("level {level}")}))
        .collect();
    let config = json!({"on_configure": ops.clone(), "request": ops});
    let all = probe(config.clone()).build().unwrap();
    let levels: Vec<LogLevel> = all
        .logs()
        .iter()
        .filter(|l| l.message.starts_with("level"))
        .map(|l| l.level)
        .collect();
    assert_eq!(
        levels,
        [
            LogLevel::Trace,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
            LogLevel::Critical
        ]
    );

    let mut quiet = probe(config).log_level(LogLevel::Warn).build().unwrap();
    let out = quiet.request().send().unwrap();
    let messages: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["level 3", "level 4", "level 5"]);
    assert!(out.logs.iter().all(|l| l.context_id == out.context_id));
}

#[test]
fn local_replies_stop_the_request_and_go_through_the_response_phase() {
    let mut host = host(json!({
        "request": [
            {"op": "reply", "status": 403, "body": "denied", "headers": [["x-why", "test"]]},
            {"op": "set", "name": "x-after", "value": "1"},
        ],
        "response": [{"op": "set", "name": "x-resp", "value": "seen"}],
    }));
    let out = host.request().send().unwrap();
    assert!(!out.forwarded);
    assert_eq!(out.status(), Some(403));
    assert_eq!(out.response_body, b"denied");
    assert_eq!(
        out.response_header("content-type").as_deref(),
        Some("text/plain")
    );
    assert_eq!(out.response_header("x-why").as_deref(), Some("test"));
    assert_eq!(out.response_header("x-resp").as_deref(), Some("seen"));
    let reply = out.local_reply.unwrap();
    assert_eq!(
        (reply.status, reply.body.as_slice(), reply.grpc_status),
        (403, &b"denied"[..], -1)
    );
}

#[test]
fn foreign_functions_are_recorded_and_unknown_ones_are_not_found() {
    let mut host = host(json!({"request": [
        {"op": "foreign", "name": "clear_route_cache", "to": "x-clear"},
        {"op": "foreign", "name": "reverse", "args": "abc", "to": "x-rev"},
        {"op": "foreign", "name": "nope", "to": "x-nope"},
    ]}));
    host.foreign_function("reverse", |args| {
        Ok(Some(args.iter().rev().copied().collect()))
    });
    let out = host.request().send().unwrap();
    assert_eq!(out.request_header("x-clear").as_deref(), Some("ok"));
    assert_eq!(out.request_header("x-rev").as_deref(), Some("cba"));
    assert_eq!(out.request_header("x-nope").as_deref(), Some("NotFound"));
    assert!(out.called_foreign("clear_route_cache"));
    let names: Vec<&str> = out.foreign_calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["clear_route_cache", "reverse"]);
}

#[test]
fn current_time_is_the_virtual_clock() {
    let mut host = host(json!({"request": [{"op": "time", "to": "x-now"}]}));
    let t0: u128 = host
        .request()
        .send()
        .unwrap()
        .request_header("x-now")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(t0, DEFAULT_START.as_nanos());
    host.advance(Duration::from_secs(5)).unwrap();
    let t1: u128 = host
        .request()
        .send()
        .unwrap()
        .request_header("x-now")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(t1 - t0, 5_000_000_000);
}

#[test]
fn on_configure_false_rejects_the_config_with_its_logs() {
    let error = probe(json!({"reject": true}))
        .build()
        .err()
        .expect("rejected");
    let rejected = error
        .downcast_ref::<ConfigRejected>()
        .expect("a ConfigRejected");
    assert!(rejected
        .logs
        .iter()
        .any(|l| l.level == LogLevel::Error
            && l.message == "probe: configuration rejected on purpose"));
    assert!(error
        .to_string()
        .contains("proxy_on_configure returned false"));

    let (_, rejection) = common::plugin("probe.wasm")
        .host()
        .plugin_config("{not json")
        .start()
        .unwrap();
    let logs = rejection.expect("invalid JSON is rejected").logs;
    assert!(
        logs[0]
            .message
            .starts_with("probe: invalid configuration: "),
        "{logs:?}"
    );

    let mut host = host(json!({}));
    assert_eq!(
        host.reconfigure(json!({"reject": true}).to_string())
            .unwrap(),
        vec![false]
    );
    assert_eq!(host.reconfigure("{}").unwrap(), vec![true]);
}

#[test]
fn vm_configuration_is_readable_in_on_vm_start() {
    let host = probe(json!({})).vm_config("vm-settings").build().unwrap();
    assert!(host
        .logs()
        .iter()
        .any(|l| l.message == "vm config (11 bytes): vm-settings"));
}

#[test]
fn a_trap_is_an_error_naming_the_hook_and_kills_only_that_worker() {
    let mut host = probe(json!({})).workers(2).build().unwrap();
    let error = host
        .request()
        .header("x-probe-trap", "unreachable")
        .send()
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("proxy_on_request_headers trapped: wasm trap:"),
        "{error}"
    );
    assert!(error.contains("unreachable"), "{error}");
    let again = host.request().send().unwrap_err().to_string();
    assert!(again.contains("VM of worker 0 is dead"), "{again}");
    assert!(host.vm(0).failure().is_some());
    assert!(
        host.request_on(1).send().unwrap().forwarded,
        "other workers keep serving"
    );

    let error = host
        .request_on(1)
        .header("x-probe-trap", "panic")
        .send()
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("proxy_on_request_headers trapped"),
        "{error}"
    );
    assert!(
        error.contains("probe asked to panic"),
        "the SDK's panic log is in the error: {error}"
    );
}

#[test]
fn an_endless_loop_exhausts_the_fuel_limit_instead_of_hanging() {
    let mut host = probe(json!({"request": [{"op": "spin"}]}))
        .fuel_limit(2_000_000)
        .build()
        .unwrap();
    let error = host.request().send().unwrap_err().to_string();
    assert!(
        error.starts_with(
            "proxy_on_request_headers trapped: fuel limit of 2000000 instructions exhausted"
        ),
        "{error}"
    );
}

#[test]
fn unknown_imports_fail_at_load_naming_them() {
    let wat = r#"(module
        (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))
        (import "env" "proxy_made_up" (func))
        (import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "proxy_abi_version_0_2_1")))"#;
    let error = format!("{:#}", Plugin::from_bytes(wat).err().unwrap());
    assert!(error.contains("env.proxy_made_up"), "{error}");
    assert!(
        error.contains("wasi_snapshot_preview1.path_open"),
        "{error}"
    );
    assert!(!error.contains("proxy_log"), "{error}");

    let not_proxy_wasm = Plugin::from_bytes("(module (memory (export \"memory\") 1))")
        .err()
        .unwrap();
    assert!(not_proxy_wasm
        .to_string()
        .contains("not a proxy-wasm module"));
    let missing = Plugin::load("build/does-not-exist.wasm").err().unwrap();
    assert!(missing.to_string().contains("does-not-exist.wasm"));
}

#[test]
fn a_request_paused_forever_is_an_error_not_a_hang() {
    let mut host = host(json!({"request": [
        {"op": "dispatch", "cluster": "never", "path": "/", "timeout_ms": 0, "pause": true, "to": "x-d"},
    ]}));
    host.on_http_call("never", ScriptedResponse::timeout());
    let error = host.request().send().unwrap_err().to_string();
    assert!(
        error.contains("proxy_on_request_headers paused the request and nothing can resume it"),
        "{error}"
    );
}

#[test]
fn log_level_grpc_stubs_done_and_body_buffers() {
    let config = json!({
        "echo_request_body": true,
        "response_body": "replaced",
        "request": [
            {"op": "log_level", "to": "x-level"},
            {"op": "grpc", "to": "x-grpc"},
            {"op": "done", "to": "x-done"},
        ],
    });
    let mut host = probe(config).log_level(LogLevel::Warn).build().unwrap();
    let out = host
        .request()
        .method("POST")
        .body("abc")
        .upstream_body("original")
        .send()
        .unwrap();
    assert_eq!(out.request_header("x-level").as_deref(), Some("Warn"));
    assert_eq!(
        out.request_header("x-grpc").as_deref(),
        Some("Err(InternalFailure)"),
        "gRPC callouts are not scripted"
    );
    assert_eq!(out.request_header("x-done").as_deref(), Some("Ok(())"));
    assert_eq!(
        out.response_header("x-request-body").as_deref(),
        Some("abc"),
        "the request body is readable in on_request_body: {:?} {:?}",
        out.response_headers,
        out.fuel
    );
    assert_eq!(
        out.response_body, b"replaced",
        "set_buffer_bytes replaced the response body"
    );
}

#[test]
fn a_reset_stream_is_neither_forwarded_nor_answered() {
    let mut host = host(
        json!({"request": [{"op": "reset"}], "response": [{"op": "set", "name": "x-resp", "value": "1"}]}),
    );
    let out = host.request().send().unwrap();
    assert!(out.reset);
    assert!(!out.forwarded);
    assert_eq!(
        out.actions,
        vec![("proxy_on_request_headers", Action::Pause)]
    );
    assert!(
        !out.response_headers.contains("x-resp"),
        "no response phase after a reset"
    );
}

#[test]
fn a_trap_in_on_tick_fails_that_advance_once_and_stops_the_dead_vm_timer() {
    let mut host = probe(json!({"tick_ms": 100, "on_tick": [{"op": "spin"}]}))
        .fuel_limit(1_000_000)
        .build()
        .unwrap();
    let error = host
        .advance(Duration::from_millis(150))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("proxy_on_tick trapped: fuel limit of 1000000 instructions exhausted"),
        "{error}"
    );
    host.advance(Duration::from_secs(10))
        .expect("the dead VM has no timer left");
    let error = host.request().send().unwrap_err().to_string();
    assert!(
        error.contains("VM of worker 0 is dead since an earlier failure: proxy_on_tick trapped"),
        "{error}"
    );
}

#[test]
fn upstream_latency_moves_the_clock_and_code_details_tell_envoy_replies_apart() {
    let mut host = host(json!({"tick_ms": 100, "response": [
        {"op": "property", "path": ["response", "code_details"], "to": "x-details"},
        {"op": "property", "path": ["request", "duration"], "int": true, "to": "x-duration"},
    ]}));
    let out = host
        .request()
        .upstream_latency(Duration::from_millis(250))
        .send()
        .unwrap();
    assert_eq!(
        out.response_header("x-details").as_deref(),
        Some("via_upstream")
    );
    assert_eq!(
        out.response_header("x-duration").as_deref(),
        Some("250000000")
    );
    assert_eq!(
        host.metric("probe.ticks"),
        Some(MetricValue::Counter(2)),
        "ticks fire while the upstream works"
    );

    let timeout = host
        .request()
        .upstream_status(504)
        .response_code_details("upstream_response_timeout")
        .send()
        .unwrap();
    assert_eq!(
        timeout.response_header("x-details").as_deref(),
        Some("upstream_response_timeout")
    );
}
