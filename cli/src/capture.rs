//! Raw HTTP captures: a delivery as it came over the wire (request line, headers, a
//! blank line, the body byte for byte). `listen --save` writes them; `verify` reads
//! them, and also reads what other tools save (CRLF or LF line ends).

use std::io::Write as _;
use std::path::Path;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::Failure;

/// A parsed capture: its request line and headers, and the body's bytes.
#[derive(Debug)]
pub(crate) struct Capture {
    pub(crate) request_line: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// Reads a capture. The body is every byte after the blank line, or exactly
/// `Content-Length` bytes when the header says so (an editor's trailing newline is
/// then not part of it).
pub(crate) fn read(path: &Path) -> Result<Capture, Failure> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Capture, Failure> {
    let (head, body) = split_head(bytes).ok_or("no blank line after the headers: not an HTTP capture")?;
    let head = std::str::from_utf8(head).map_err(|_| "the request head is not text")?;
    let mut lines = head.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line));
    let request_line = lines.next().unwrap_or_default().to_owned();
    if request_line.split(' ').count() != 3 || !request_line.contains("HTTP/") {
        return Err(format!("line 1: expected a request line like `POST /webhooks HTTP/1.1`, found `{request_line}`"));
    }
    let mut headers = HeaderMap::new();
    for (n, line) in lines.enumerate() {
        let (name, value) = line.split_once(':').ok_or_else(|| format!("line {}: expected `name: value`", n + 2))?;
        // Optional whitespace around the value is not part of it (RFC 9110, 5.5).
        let (name, value) =
            header(name, value.trim_matches([' ', '\t'])).map_err(|e| format!("line {}: {e}", n + 2))?;
        headers.append(name, value);
    }
    let body = match headers.get(http::header::CONTENT_LENGTH) {
        Some(length) => {
            let length: usize =
                length.to_str().ok().and_then(|text| text.parse().ok()).ok_or("content-length is not a number")?;
            body.get(..length)
                .ok_or_else(|| format!("content-length says {length} bytes, the capture holds {}", body.len()))?
        }
        None => body,
    };
    Ok(Capture { request_line, headers, body: body.to_vec() })
}

/// A header from its name and value as written (already trimmed as the caller's
/// format wants); the error says which part is wrong.
pub(crate) fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::try_from(name).map_err(|_| format!("bad header name `{name}`"))?;
    let value = HeaderValue::try_from(value).map_err(|_| format!("bad value for `{name}`"))?;
    Ok((name, value))
}

/// The head and the body, split at the first empty line.
fn split_head(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    for (separator, width) in [(&b"\r\n\r\n"[..], 4), (&b"\n\n"[..], 2)] {
        if let Some(at) = bytes.windows(width).position(|window| window == separator) {
            return Some((&bytes[..at], &bytes[at + width..]));
        }
    }
    None
}

/// Writes a capture of a request as it came.
pub(crate) fn write(path: &Path, request_line: &str, headers: &HeaderMap, body: &[u8]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(body.len() + 512);
    write!(out, "{request_line}\r\n")?;
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    std::fs::write(path, out)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_capture_reads_with_crlf_or_lf_and_keeps_the_body_exact() {
        let crlf = parse(b"POST /w HTTP/1.1\r\nx-a: 1\r\nx-b:2 \r\n\r\n{\"a\":\n1}\r\n").unwrap();
        assert_eq!(crlf.request_line, "POST /w HTTP/1.1");
        assert_eq!(crlf.headers["x-a"], "1");
        assert_eq!(crlf.headers["x-b"], "2");
        assert_eq!(crlf.body, b"{\"a\":\n1}\r\n");
        let lf = parse(b"POST /w HTTP/1.1\nx-a: 1\ncontent-length: 3\n\nabc\n").unwrap();
        assert_eq!(lf.body, b"abc", "content-length cuts an editor's newline");
    }

    #[test]
    fn what_is_not_a_capture_says_why() {
        assert!(parse(b"POST /w HTTP/1.1\r\nx-a: 1\r\n").unwrap_err().contains("no blank line"));
        assert!(parse(b"hello\r\n\r\n").unwrap_err().contains("request line"));
        assert!(parse(b"POST /w HTTP/1.1\r\nnocolon\r\n\r\n").unwrap_err().contains("line 2"));
        assert!(parse(b"POST /w HTTP/1.1\r\ncontent-length: 9\r\n\r\nabc").unwrap_err().contains("9 bytes"));
    }
}
