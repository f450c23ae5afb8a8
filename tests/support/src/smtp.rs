//! A small SMTP server on loopback for mail to be delivered to: it records
//! every message and accepts everything.
//!
//! Enough of RFC 5321 for real clients (lettre): `EHLO`/`HELO` (advertising
//! `AUTH PLAIN LOGIN`, any credentials accepted and the user recorded),
//! `AUTH`, `MAIL FROM`, `RCPT TO` (several), `DATA` (dot-unstuffed, ending at
//! `.` alone on a line), `RSET`, `NOOP`, `QUIT`; anything else is `502`. No
//! STARTTLS: clients must use `smtp://` without `tls=required`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// One message the server took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without the angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), in order.
    pub to: Vec<String>,
    /// Headers and body as sent, dot-unstuffed, lines ending in CRLF.
    pub data: String,
    /// The user the client authenticated as, if it did.
    pub auth_user: Option<String>,
}

impl ReceivedMail {
    /// The first header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(value) = found.as_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((key, value)) = line.split_once(':')
                && key.trim().eq_ignore_ascii_case(name)
            {
                found = Some(value.trim().to_string());
            }
        }
        found
    }
}

#[derive(Default)]
struct Shared {
    mails: Mutex<Vec<ReceivedMail>>,
}

pub struct SmtpServer {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    /// How many messages arrived; waiters watch it.
    count: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpServer {
    /// Listens on `127.0.0.1:<free port>` in this test's runtime; stops when
    /// dropped.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the SMTP server");
        let addr = listener.local_addr().expect("the SMTP server's address");
        let shared = Arc::new(Shared::default());
        let (arrived, count) = watch::channel(0usize);
        let arrived = Arc::new(arrived);
        let task = tokio::spawn({
            let shared = shared.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let shared = shared.clone();
                    let arrived = arrived.clone();
                    tokio::spawn(async move {
                        // A client that goes away mid-session is its business.
                        let _ = session(stream, &shared, &arrived).await;
                    });
                }
            }
        });
        SmtpServer {
            addr,
            shared,
            count,
            task,
        }
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// The messages taken so far, in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.mails.lock().expect("the mail list").clone()
    }

    /// Waits until `n` messages have arrived, for at most `timeout`, and
    /// returns them all; panics with what did arrive otherwise.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let mut count = self.count.clone();
        let arrived = tokio::time::timeout(timeout, count.wait_for(|count| *count >= n)).await;
        if !matches!(arrived, Ok(Ok(_))) {
            panic!(
                "waited {timeout:?} for {n} messages; got {:#?}",
                self.messages()
            );
        }
        self.messages()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A transaction under way: what `MAIL FROM` and `RCPT TO` said.
#[derive(Default)]
struct Envelope {
    from: Option<String>,
    to: Vec<String>,
}

async fn session(
    stream: TcpStream,
    shared: &Shared,
    arrived: &watch::Sender<usize>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut auth_user: Option<String> = None;
    let mut envelope = Envelope::default();
    write.write_all(b"220 127.0.0.1 ESMTP test\r\n").await?;
    while let Some(line) = read_line(&mut lines).await? {
        let (verb, rest) = match line.split_once(' ') {
            Some((verb, rest)) => (verb.to_ascii_uppercase(), rest.trim()),
            None => (line.to_ascii_uppercase(), ""),
        };
        let reply: String = match verb.as_str() {
            "EHLO" => {
                envelope = Envelope::default();
                "250-127.0.0.1 greets you\r\n250-AUTH PLAIN LOGIN\r\n250 HELP\r\n".into()
            }
            "HELO" => {
                envelope = Envelope::default();
                "250 127.0.0.1\r\n".into()
            }
            "AUTH" => match auth(rest, &mut lines, &mut write).await? {
                Some(user) => {
                    auth_user = Some(user);
                    "235 2.7.0 Authentication successful\r\n".into()
                }
                None => "501 5.5.2 cannot decode the credentials\r\n".into(),
            },
            "MAIL" => match path(rest, "FROM:") {
                Some(from) => {
                    envelope = Envelope {
                        from: Some(from),
                        to: Vec::new(),
                    };
                    "250 2.1.0 OK\r\n".into()
                }
                None => "501 5.5.4 syntax: MAIL FROM:<address>\r\n".into(),
            },
            "RCPT" => match (&envelope.from, path(rest, "TO:")) {
                (None, _) => "503 5.5.1 MAIL first\r\n".into(),
                (Some(_), Some(to)) => {
                    envelope.to.push(to);
                    "250 2.1.5 OK\r\n".into()
                }
                (Some(_), None) => "501 5.5.4 syntax: RCPT TO:<address>\r\n".into(),
            },
            "DATA" => match envelope.from.take() {
                Some(from) if !envelope.to.is_empty() => {
                    write
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let Some(data) = read_data(&mut lines).await? else {
                        return Ok(());
                    };
                    let mail = ReceivedMail {
                        from,
                        to: std::mem::take(&mut envelope.to),
                        data,
                        auth_user: auth_user.clone(),
                    };
                    let count = {
                        let mut mails = shared.mails.lock().expect("the mail list");
                        mails.push(mail);
                        mails.len()
                    };
                    arrived.send_replace(count);
                    "250 2.0.0 OK: queued\r\n".into()
                }
                from => {
                    envelope.from = from;
                    "503 5.5.1 MAIL and RCPT first\r\n".into()
                }
            },
            "RSET" => {
                envelope = Envelope::default();
                "250 2.0.0 OK\r\n".into()
            }
            "NOOP" => "250 2.0.0 OK\r\n".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 command not implemented\r\n".into(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

/// One line without its line ending; `None` at the end of the stream.
async fn read_line(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    if lines.read_until(b'\n', &mut buf).await? == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// The message after `DATA`, up to the line holding only `.`, with the
/// leading dot of dot-stuffed lines removed; `None` if the stream ends
/// first.
async fn read_data(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<String>> {
    let mut data = String::new();
    while let Some(line) = read_line(lines).await? {
        if line == "." {
            return Ok(Some(data));
        }
        data.push_str(line.strip_prefix('.').unwrap_or(&line));
        data.push_str("\r\n");
    }
    Ok(None)
}

/// The address in `FROM:<a@b> PARAM=…` (brackets optional, parameters
/// ignored).
fn path(rest: &str, keyword: &str) -> Option<String> {
    let head = rest.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = rest[keyword.len()..].trim_start();
    let address = match rest.strip_prefix('<') {
        Some(inner) => inner.split_once('>')?.0,
        None => rest.split_whitespace().next()?,
    };
    Some(address.to_string())
}

/// Runs an `AUTH` exchange (PLAIN, with or without an initial response, or
/// LOGIN); the user name, or `None` if the client's answers do not decode.
async fn auth(
    args: &str,
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
) -> std::io::Result<Option<String>> {
    let mut words = args.split_whitespace();
    let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
    let initial = words.next().map(str::to_string);
    let mut ask = async |challenge: &str| -> std::io::Result<Option<String>> {
        write
            .write_all(format!("334 {challenge}\r\n").as_bytes())
            .await?;
        read_line(lines).await
    };
    let user = match mechanism.as_str() {
        "PLAIN" => {
            let response = match initial {
                Some(response) => Some(response),
                None => ask("").await?,
            };
            // authzid NUL authcid NUL password: the user is the authcid.
            response
                .and_then(|r| decode(&r))
                .and_then(|r| r.split('\0').nth(1).map(str::to_string))
        }
        "LOGIN" => {
            let user = match initial {
                Some(user) => Some(user),
                None => ask(&BASE64.encode("Username:")).await?,
            };
            let user = user.and_then(|u| decode(&u));
            ask(&BASE64.encode("Password:")).await?;
            user
        }
        _ => None,
    };
    Ok(user)
}

fn decode(base64: &str) -> Option<String> {
    let bytes = BASE64.decode(base64.trim()).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client speaking the protocol by hand, line by line.
    struct Talk {
        lines: BufReader<tokio::net::tcp::OwnedReadHalf>,
        write: tokio::net::tcp::OwnedWriteHalf,
    }

    impl Talk {
        async fn open(server: &SmtpServer) -> Self {
            let (read, write) = TcpStream::connect(server.addr())
                .await
                .unwrap()
                .into_split();
            let mut talk = Talk {
                lines: BufReader::new(read),
                write,
            };
            assert!(talk.reply().await.starts_with("220 "));
            talk
        }

        /// The whole reply, continuation lines included.
        async fn reply(&mut self) -> String {
            let mut reply = String::new();
            loop {
                let line = read_line(&mut self.lines).await.unwrap().unwrap();
                reply.push_str(&line);
                reply.push('\n');
                if line.as_bytes().get(3) != Some(&b'-') {
                    return reply;
                }
            }
        }

        async fn say(&mut self, line: &str) -> String {
            self.write
                .write_all(format!("{line}\r\n").as_bytes())
                .await
                .unwrap();
            self.reply().await
        }
    }

    #[tokio::test]
    async fn takes_a_message_with_several_recipients() {
        let server = SmtpServer::start().await;
        assert!(server.url().starts_with("smtp://127.0.0.1:"));
        let mut t = Talk::open(&server).await;
        let ehlo = t.say("EHLO client.test").await;
        assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
        let plain = BASE64.encode("\0mailer\0secret");
        assert!(
            t.say(&format!("AUTH PLAIN {plain}"))
                .await
                .starts_with("235")
        );
        assert!(t.say("NOOP").await.starts_with("250"));
        assert!(
            t.say("MAIL FROM:<a@example.com> BODY=8BITMIME")
                .await
                .starts_with("250")
        );
        assert!(t.say("RCPT TO:<b@example.com>").await.starts_with("250"));
        assert!(t.say("rcpt to:<c@example.com>").await.starts_with("250"));
        assert!(t.say("DATA").await.starts_with("354"));
        t.write
            .write_all(b"Subject: hi\r\n\r\n..leading dot\r\n..\r\nnot the end.\r\n.\r\n")
            .await
            .unwrap();
        assert!(t.reply().await.starts_with("250"));
        assert!(t.say("QUIT").await.starts_with("221"));

        let mails = server.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(
            mails,
            vec![ReceivedMail {
                from: "a@example.com".into(),
                to: vec!["b@example.com".into(), "c@example.com".into()],
                data: "Subject: hi\r\n\r\n.leading dot\r\n.\r\nnot the end.\r\n".into(),
                auth_user: Some("mailer".into()),
            }]
        );
        assert_eq!(mails[0].header("subject").as_deref(), Some("hi"));
    }

    #[tokio::test]
    async fn login_rset_and_unknown_commands() {
        let server = SmtpServer::start().await;
        let mut t = Talk::open(&server).await;
        assert!(t.say("HELO client.test").await.starts_with("250"));
        assert!(t.say("STARTTLS").await.starts_with("502"));
        assert!(t.say("VRFY someone").await.starts_with("502"));
        assert!(t.say("DATA").await.starts_with("503"));
        assert!(t.say("RCPT TO:<b@example.com>").await.starts_with("503"));
        assert_eq!(
            t.say("AUTH LOGIN").await,
            format!("334 {}\n", BASE64.encode("Username:"))
        );
        assert!(t.say(&BASE64.encode("someone")).await.starts_with("334"));
        assert!(t.say(&BASE64.encode("anything")).await.starts_with("235"));
        assert!(t.say("MAIL FROM:<a@example.com>").await.starts_with("250"));
        assert!(
            t.say("RCPT TO:<dropped@example.com>")
                .await
                .starts_with("250")
        );
        assert!(t.say("RSET").await.starts_with("250"));
        assert!(t.say("DATA").await.starts_with("503"));
        assert!(t.say("MAIL FROM:<>").await.starts_with("250"));
        assert!(t.say("RCPT TO:<kept@example.com>").await.starts_with("250"));
        assert!(t.say("DATA").await.starts_with("354"));
        t.write.write_all(b"\r\nbody\r\n.\r\n").await.unwrap();
        assert!(t.reply().await.starts_with("250"));

        let mails = server.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(mails[0].from, "");
        assert_eq!(mails[0].to, vec!["kept@example.com".to_string()]);
        assert_eq!(mails[0].auth_user.as_deref(), Some("someone"));
    }

    #[tokio::test]
    #[should_panic(expected = "waited")]
    async fn waiting_for_mail_that_never_comes_panics() {
        let server = SmtpServer::start().await;
        server.wait_for(1, Duration::from_millis(50)).await;
    }

    #[test]
    fn headers_are_found_and_unfolded() {
        let mail = ReceivedMail {
            from: String::new(),
            to: Vec::new(),
            data: "From: a@example.com\r\nSubject: a long\r\n subject\r\nTo: b@example.com\r\n\r\nSubject: not a header\r\n".into(),
            auth_user: None,
        };
        assert_eq!(mail.header("SUBJECT").as_deref(), Some("a long subject"));
        assert_eq!(mail.header("to").as_deref(), Some("b@example.com"));
        assert_eq!(mail.header("cc"), None);
    }
}
