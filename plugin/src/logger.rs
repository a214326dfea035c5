//! The `log` crate's records and panic messages into Envoy's log, through `proxy_log`.
use crate::abi::{self, LogLevel};

struct ProxyLog;

static LOGGER: ProxyLog = ProxyLog;

/// Installs the logger at level Info, and a panic hook that logs the message at Critical: the
/// module is built with panic=abort, so without it a panic would reach Envoy only as a trap with
/// no reason. Panics must not happen; this is for when one does.
pub fn install() {
    // An error means a logger is installed already: ours, from an earlier call.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
    std::panic::set_hook(Box::new(|panic| {
        abi::log(LogLevel::Critical, &panic.to_string());
    }));
}

impl log::Log for ProxyLog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        match record.args().as_str() {
            // A message without arguments needs no formatting.
            Some(text) => abi::log(level, text),
            None => abi::log(level, &record.args().to_string()),
        }
    }

    fn flush(&self) {}
}
