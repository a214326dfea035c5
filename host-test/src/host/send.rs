//! [`Host::send`]: one request through the filter, as Envoy's filter chain
//! drives it.

use super::Host;
use crate::headers::HeaderMap;
use crate::request::{local_reply_response, validate, Action, Outcome, Request};
use crate::state::{RequestInfo, Stream};
use crate::types::*;
use anyhow::{bail, Context as _, Result};
use std::time::{Duration, UNIX_EPOCH};

impl Host {
    /// Runs the request through the filter: context create, request headers
    /// (body, trailers), the upstream response or the filter's local reply through
    /// response headers (body), then `proxy_on_log`, `proxy_on_done`,
    /// `proxy_on_delete` (Envoy: the access log, then the filter's destruction).
    /// A hook that returns `Pause` waits for the filter to
    /// resume (`proxy_continue_stream`) or reply; pending HTTP calls of the request
    /// are driven to their response on the virtual clock; if nothing can resume it
    /// the request fails.
    ///
    /// `worker` picks the VM (worker thread) that runs it; the request may be
    /// reused. Panics if there is no such worker.
    pub fn send(&mut self, worker: usize, request: &Request) -> Result<Outcome> {
        assert!(
            worker < self.vms.len(),
            "no worker {worker}: the host has {}",
            self.vms.len()
        );
        let host = self;
        let w = worker;
        let Request {
            method,
            path,
            authority,
            scheme,
            headers,
            body,
            trailers,
            source,
            destination,
            properties,
            at,
            upstream,
            upstream_body,
            upstream_details,
            upstream_latency,
            reset_before_response,
        } = request.clone();
        if let Some(at) = at {
            let target = at.duration_since(UNIX_EPOCH).unwrap_or_default();
            let now = host.shared().now;
            if target < now {
                bail!("cannot send a request at {at:?}: the virtual clock is already past it");
            }
            host.advance_to(target)?;
        }
        let mut sent = HeaderMap::from_pairs([
            (":authority", authority),
            (":path", path),
            (":method", method),
            (":scheme", scheme),
        ]);
        for (k, v) in headers {
            sent.add(k, v);
        }
        validate(&sent)?;

        let marks = Marks::take(host);
        let root = host.vms[w].root_id();
        let ctx = host.vms[w].new_context_id();
        let start = host.shared().now;
        let info = RequestInfo {
            source,
            destination,
            start,
            properties,
            code_details: String::new(),
        };
        let mut stream = Stream::new(info);
        stream.request_headers = Some(sent.clone());
        host.vms[w].state_mut().streams.insert(ctx, stream);

        let mut run = Run {
            host,
            w,
            ctx,
            actions: Vec::new(),
        };
        run.hook("proxy_on_context_create", &[ctx as i32, root as i32])?;
        let eos = body.is_empty() && trailers.is_empty();
        run.phase(
            "proxy_on_request_headers",
            &[ctx as i32, sent.len() as i32, eos as i32],
            Phase::Request,
        )?;
        if !run.stopped() && !body.is_empty() {
            run.stream().request_body = Some(body.clone());
            run.phase(
                "proxy_on_request_body",
                &[ctx as i32, body.len() as i32, trailers.is_empty() as i32],
                Phase::Request,
            )?;
        }
        if !run.stopped() && !trailers.is_empty() {
            run.stream().request_trailers = Some(trailers.clone());
            run.phase(
                "proxy_on_request_trailers",
                &[ctx as i32, trailers.len() as i32],
                Phase::Request,
            )?;
        }
        let forwarded = !run.stopped();
        let request_headers = run.stream().request_headers.clone().unwrap_or_default();

        let (mut response_headers, mut response_body) = match run.stream().local_reply.clone() {
            Some(reply) => {
                run.stream().info.code_details = reply.details.clone();
                local_reply_response(&reply)
            }
            None => {
                run.stream().info.code_details = upstream_details;
                if !run.stream().reset && !upstream_latency.is_zero() {
                    let target = run.host.shared().now + upstream_latency;
                    run.host.advance_to(target)?;
                }
                if reset_before_response {
                    (HeaderMap::new(), Vec::new())
                } else {
                    (upstream, upstream_body)
                }
            }
        };
        let received_headers = response_headers.clone();
        if !run.stream().reset && !reset_before_response {
            let local_before = run.stream().local_reply.is_some();
            let eos = response_body.is_empty();
            run.stream().response_headers = Some(response_headers.clone());
            run.phase(
                "proxy_on_response_headers",
                &[ctx as i32, response_headers.len() as i32, eos as i32],
                Phase::Response,
            )?;
            if !run.stopped() && !response_body.is_empty() {
                run.stream().response_body = Some(response_body.clone());
                run.phase(
                    "proxy_on_response_body",
                    &[ctx as i32, response_body.len() as i32, 1],
                    Phase::Response,
                )?;
            }
            let stream = run.stream();
            match (&stream.local_reply, local_before) {
                // A local reply sent while the response was processed replaces it.
                (Some(reply), false) => {
                    (response_headers, response_body) = local_reply_response(reply)
                }
                _ => {
                    response_headers = stream.response_headers.clone().unwrap_or_default();
                    if let Some(body) = &stream.response_body {
                        response_body = body.clone();
                    }
                }
            }
        }
        let local_reply = run.stream().local_reply.clone();
        let reset = run.stream().reset;
        run.hook("proxy_on_log", &[ctx as i32])?;
        run.hook("proxy_on_done", &[ctx as i32])?;
        run.hook("proxy_on_delete", &[ctx as i32])?;
        let Run { host, actions, .. } = run;
        let state = host.vms[w].state_mut();
        state.streams.remove(&ctx);
        state.pending_calls.retain(|c| c.context_id != ctx);
        state.current = state.root_id;

        let shared = host.shared();
        let fuel = Fuel {
            hooks: shared.hook_fuel[marks.fuel..].to_vec(),
        };
        Ok(Outcome {
            worker: w,
            context_id: ctx,
            sent_headers: sent,
            request_headers,
            forwarded,
            received_headers,
            response_headers,
            response_body,
            local_reply,
            reset,
            actions,
            logs: shared.logs[marks.logs..].to_vec(),
            foreign_calls: shared.foreign_calls[marks.foreign..].to_vec(),
            http_calls: shared.http_calls[marks.http..].to_vec(),
            metric_deltas: shared.metric_deltas(&marks.metrics),
            fuel,
        })
    }
}

struct Marks {
    logs: usize,
    foreign: usize,
    http: usize,
    fuel: usize,
    /// Each metric's value (histograms: sample count) by index: a copy of every metric, samples
    /// and names included, per request made long runs quadratic.
    metrics: Vec<u64>,
}

impl Marks {
    fn take(host: &Host) -> Self {
        let shared = host.shared();
        Self {
            logs: shared.logs.len(),
            foreign: shared.foreign_calls.len(),
            http: shared.http_calls.len(),
            fuel: shared.hook_fuel.len(),
            metrics: shared.metrics.iter().map(|m| m.value.value()).collect(),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Request,
    Response,
}

struct Run<'h> {
    host: &'h mut Host,
    w: usize,
    ctx: u32,
    actions: Vec<(&'static str, Action)>,
}

impl Run<'_> {
    fn stream(&mut self) -> &mut Stream {
        let ctx = self.ctx;
        self.host.vms[self.w]
            .state_mut()
            .streams
            .get_mut(&ctx)
            .expect("the request's stream lives until send returns")
    }

    fn stopped(&mut self) -> bool {
        let stream = self.stream();
        stream.local_reply.is_some() || stream.reset
    }

    fn hook(&mut self, hook: &'static str, args: &[i32]) -> Result<Option<i32>> {
        let result = self.host.vms[self.w].call(hook, self.ctx, args)?;
        self.host.run_pending()?;
        Ok(result)
    }

    /// Runs a hook that returns an Action and waits while it pauses.
    fn phase(&mut self, hook: &'static str, args: &[i32], phase: Phase) -> Result<()> {
        {
            let stream = self.stream();
            stream.continued_request = false;
            stream.continued_response = false;
        }
        let action = match self.hook(hook, args)? {
            Some(0) | None => Action::Continue,
            Some(1) => Action::Pause,
            Some(other) => Action::Other(other),
        };
        self.actions.push((hook, action));
        if action == Action::Continue {
            return Ok(());
        }
        loop {
            let stream = self.stream();
            let resumed = match phase {
                Phase::Request => stream.continued_request,
                Phase::Response => stream.continued_response,
            };
            if resumed || stream.local_reply.is_some() || stream.reset {
                return Ok(());
            }
            let ctx = self.ctx;
            let next = self.host.vms[self.w]
                .state()
                .pending_calls
                .iter()
                .filter(|c| c.context_id == ctx)
                .map(|c| c.due)
                .min();
            match next {
                Some(due) if due != Duration::MAX => self.host.advance_to(due).with_context(|| format!("while {hook} waited for its HTTP call"))?,
                _ => bail!("{hook} paused the request and nothing can resume it (no HTTP call of this request is pending)"),
            }
        }
    }
}
