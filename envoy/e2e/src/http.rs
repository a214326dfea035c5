//! A minimal blocking HTTP/1.1 client with keep-alive, enough to send thousands of requests through
//! Envoy quickly and to read the echo backends' answers.
//!
//! It never retries: a request that fails is reported as failed, which is what the "zero failed
//! requests during a config push" tests must see. It reconnects before the next request when the
//! server announced `connection: close` or the previous request failed.
use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// Largest response head accepted, in bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// One HTTP response.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// What the echo backend saw, if an echo backend answered.
    pub fn echo(&self) -> Option<Echo> {
        Echo::parse(self)
    }
}

/// The answer of a `sluice-echo` backend: which version served the request, and the request as it
/// arrived upstream (after Envoy and the filter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Echo {
    pub version: String,
    pub method: String,
    pub path: String,
    /// Header name (lowercase) → values, as received by the backend.
    pub headers: Vec<(String, Vec<String>)>,
}

impl Echo {
    fn parse(response: &Response) -> Option<Echo> {
        let body = response.json().ok()?;
        let text = |key: &str| body.get(key)?.as_str().map(str::to_string);
        let headers = body
            .get("headers")?
            .as_object()?
            .iter()
            .map(|(name, values)| {
                let values = values
                    .as_array()
                    .map(|vs| {
                        vs.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                (name.clone(), values)
            })
            .collect();
        Some(Echo {
            version: text("version")?,
            method: text("method")?,
            path: text("path")?,
            headers,
        })
    }

    /// The first value of request header `name` as the upstream received it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).first().map(String::as_str)
    }

    /// Every value of request header `name` as the upstream received it.
    pub fn header_values(&self, name: &str) -> &[String] {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, vs)| vs.as_slice())
            .unwrap_or(&[])
    }
}

/// Why a request failed.
#[derive(Debug)]
pub struct HttpError {
    pub context: String,
    pub source: io::Error,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A keep-alive connection to one server (reconnects when needed, never retries).
pub struct HttpClient {
    addr: SocketAddr,
    host: String,
    timeout: Duration,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
    connects: u64,
}

impl HttpClient {
    /// A client for `addr`; it connects on the first request. `Host` defaults to the address.
    pub fn new(addr: SocketAddr) -> HttpClient {
        HttpClient {
            addr,
            host: addr.to_string(),
            timeout: Duration::from_secs(10),
            conn: None,
            connects: 0,
        }
    }

    /// Sends `Host: host` (the authority Envoy and Sluice match on) unless a request sets its own.
    pub fn with_host(mut self, host: &str) -> HttpClient {
        self.host = host.to_string();
        self
    }

    /// Read/write timeout per request (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> HttpClient {
        self.timeout = timeout;
        self
    }

    /// TCP connections opened so far (1 when keep-alive held throughout).
    pub fn connects(&self) -> u64 {
        self.connects
    }

    /// `GET path` with extra request headers.
    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
        self.request("GET", path, headers, &[])
    }

    /// One request; `content-length` is added when `body` is not empty.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, HttpError> {
        let addr = self.addr;
        let result = self.exchange(method, path, headers, body);
        match result {
            Ok((response, keep)) => {
                if !keep {
                    self.conn = None;
                }
                Ok(response)
            }
            Err(source) => {
                self.conn = None;
                Err(HttpError {
                    context: format!("{method} {path} to {addr}"),
                    source,
                })
            }
        }
    }

    fn connection(&mut self) -> io::Result<&mut (TcpStream, BufReader<TcpStream>)> {
        if self.conn.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, self.timeout)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(self.timeout))?;
            stream.set_write_timeout(Some(self.timeout))?;
            let reader = BufReader::new(stream.try_clone()?);
            self.connects += 1;
            self.conn = Some((stream, reader));
        }
        self.conn
            .as_mut()
            .ok_or_else(|| io::Error::other("no connection"))
    }

    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<(Response, bool)> {
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("host: {}\r\n", self.host));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() {
            head.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let head_request = method.eq_ignore_ascii_case("HEAD");
        let (stream, reader) = self.connection()?;
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        stream.write_all(&out)?;
        read_response(reader, head_request)
    }
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Reads one response; also says whether the connection may be reused.
fn read_response<R: BufRead>(reader: &mut R, head_request: bool) -> io::Result<(Response, bool)> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        ));
    }
    let mut total = line.len();
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or("");
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("malformed status line {line:?}")))?;
    let mut keep_alive = version == "HTTP/1.1";
    let mut headers = Vec::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            return Err(invalid("connection closed inside the response head"));
        }
        total += n;
        if total > MAX_HEAD_BYTES {
            return Err(invalid("response head too large"));
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed
            .split_once(':')
            .ok_or_else(|| invalid(format!("malformed header line {trimmed:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v): &(String, String)| v.to_ascii_lowercase())
    };
    match header("connection").as_deref() {
        Some(c) if c.contains("close") => keep_alive = false,
        Some(c) if c.contains("keep-alive") => keep_alive = true,
        _ => {}
    }
    let mut body = Vec::new();
    let no_body = head_request || status == 204 || status == 304 || (100..200).contains(&status);
    if !no_body {
        if header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
            read_chunked(reader, &mut body)?;
        } else if let Some(length) = header("content-length") {
            let length: usize = length
                .trim()
                .parse()
                .map_err(|_| invalid("bad content-length"))?;
            body.resize(length, 0);
            reader.read_exact(&mut body)?;
        } else {
            reader.read_to_end(&mut body)?;
            keep_alive = false;
        }
    }
    Ok((
        Response {
            status,
            headers,
            body,
        },
        keep_alive,
    ))
}

fn read_chunked<R: BufRead>(reader: &mut R, body: &mut Vec<u8>) -> io::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size_text = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(());
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        line.clear();
        reader.read_line(&mut line)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_chunked_and_close() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi";
        let (r, keep) = read_response(&mut &raw[..], false).unwrap();
        assert_eq!((r.status, r.text().as_str(), keep), (200, "hi", true));
        assert_eq!(r.header("x-a"), Some("b"));

        let raw = b"HTTP/1.1 503 x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let (r, keep) = read_response(&mut &raw[..], false).unwrap();
        assert_eq!((r.status, r.text().as_str(), keep), (503, "abcde", false));
    }

    #[test]
    fn talks_keep_alive_to_the_echo_server() {
        let server =
            sluice_echo::EchoServer::start("127.0.0.1:0", sluice_echo::EchoOptions::new("v7"))
                .unwrap();
        let mut client = HttpClient::new(server.addr());
        for i in 0..50 {
            let r = client
                .get(&format!("/p/{i}"), &[("x-user", "alice")])
                .unwrap();
            let echo = r.echo().unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(echo.version, "v7");
            assert_eq!(echo.path, format!("/p/{i}"));
            assert_eq!(echo.header("x-user"), Some("alice"));
        }
        assert_eq!(client.connects(), 1);
        let r = client.request("POST", "/b", &[], b"12345").unwrap();
        assert_eq!(r.json().unwrap()["body_bytes"], 5);
    }
}
