//! A loopback SMTP server that records what it is sent, for the SMTP
//! provider's tests and for the routes that send email through it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One message as the test SMTP server received it.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The DATA section, dot-unstuffed, with CRLF line ends.
    pub data: String,
}

impl Received {
    /// Header fields by lower-cased name (folded lines joined).
    pub fn headers(&self) -> BTreeMap<String, String> {
        let head = self.data.split("\r\n\r\n").next().unwrap();
        let mut headers = BTreeMap::new();
        let mut last = String::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                headers
                    .entry(last.clone())
                    .and_modify(|v: &mut String| v.push_str(line));
            } else if let Some((name, value)) = line.split_once(':') {
                last = name.to_ascii_lowercase();
                headers.insert(last.clone(), value.trim().to_owned());
            }
        }
        headers
    }

    pub fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
    }

    /// The body as the reader sees it: quoted-printable (RFC 2045 6.7:
    /// `=XX` bytes, `=` at a line end joins the lines) decoded when the
    /// message says it is, with LF line ends.
    pub fn text(&self) -> String {
        let body = self.body().replace("\r\n", "\n");
        let encoding = self.headers().get("content-transfer-encoding").cloned();
        if encoding.as_deref() != Some("quoted-printable") {
            return body;
        }
        let body = body.replace("=\n", "");
        let mut bytes = Vec::with_capacity(body.len());
        let mut rest = body.as_bytes();
        while let Some((&b, tail)) = rest.split_first() {
            match (b, tail.get(..2)) {
                (b'=', Some(hex)) => {
                    let hex = std::str::from_utf8(hex).expect("ASCII hex digits");
                    bytes.push(u8::from_str_radix(hex, 16).expect("=XX is hex"));
                    rest = &tail[2..];
                }
                _ => {
                    bytes.push(b);
                    rest = tail;
                }
            }
        }
        String::from_utf8(bytes).expect("the text is UTF-8")
    }
}

/// A loopback SMTP server that speaks just enough SMTP for one client:
/// greeting, EHLO, MAIL, RCPT (answered with `rcpt_reply`), DATA, QUIT.
pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl SmtpServer {
    pub async fn start(rcpt_reply: &'static str) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(smtp_session(stream, rcpt_reply, sink.clone()));
            }
        });
        SmtpServer { port, received }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn smtp_session(
    stream: TcpStream,
    rcpt_reply: &'static str,
    received: Arc<Mutex<Vec<Received>>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 mx.test ESMTP ready\r\n").await?;
    let mut message = Received::default();
    while let Some(line) = lines.next_line().await? {
        let verb = line.to_ascii_uppercase();
        let reply = if verb.starts_with("EHLO") || verb.starts_with("HELO") {
            "250-mx.test\r\n250 HELP"
        } else if let Some(from) = verb.strip_prefix("MAIL FROM:") {
            message.mail_from = line[line.len() - from.len()..].to_owned();
            "250 2.1.0 Ok"
        } else if let Some(to) = verb.strip_prefix("RCPT TO:") {
            message
                .rcpt_to
                .push(line[line.len() - to.len()..].to_owned());
            rcpt_reply
        } else if verb == "DATA" {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                data.push_str("\r\n");
            }
            message.data = data;
            received.lock().unwrap().push(std::mem::take(&mut message));
            "250 2.0.0 Ok: queued as 4F2A11C0"
        } else if verb == "RSET" || verb == "NOOP" {
            "250 2.0.0 Ok"
        } else if verb == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 Error: command not recognized"
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
    Ok(())
}
