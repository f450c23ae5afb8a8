//! Invitation mail over real SMTP conversations: lettre delivering to the
//! test SMTP server (envelope, headers, body, login), a relay's refusal
//! reaching the caller with its words, and relays that are not there or do
//! not answer costing no more than the timeout.

use chrono::{TimeZone, Utc};
use chronos_server::account::mail::{InviteMail, MailError, Mailer};
use chronos_test_support::SmtpServer;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

fn invite(to: &str) -> InviteMail {
    InviteMail {
        to: to.into(),
        organization: "Analytical Engines".into(),
        role: "developer".into(),
        invited_by: Some("Charles Babbage".into()),
        // Short enough that no line of the body is wrapped.
        url: "https://chronos.example.com/invites/k7Qx2".into(),
        expires_at: Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap(),
    }
}

#[tokio::test]
async fn an_invite_is_delivered() {
    let smtp = SmtpServer::start().await;
    let mailer = Mailer::new(&smtp.url(), "Chronos <chronos@example.com>").unwrap();
    mailer
        .send_invite(&invite("ada@example.com"))
        .await
        .unwrap();

    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    let mail = &mails[0];
    assert_eq!(mail.from, "chronos@example.com");
    assert_eq!(mail.to, vec!["ada@example.com".to_string()]);
    assert_eq!(mail.auth_user, None);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("You're invited to Analytical Engines on Chronos")
    );
    assert_eq!(mail.header("To").as_deref(), Some("ada@example.com"));
    assert_eq!(
        mail.header("From").as_deref(),
        Some("Chronos <chronos@example.com>")
    );
    // Short lines of ASCII: sent as they are.
    assert_eq!(
        mail.header("Content-Transfer-Encoding").as_deref(),
        Some("7bit")
    );
    let text = body_text(mail);
    for sentence in [
        "Charles Babbage invited you to join Analytical Engines on Chronos as developer.",
        " https://chronos.example.com/invites/k7Qx2 ",
        "The link expires on 2030-01-02 at 03:04 UTC.",
        "If you did not expect this, ignore this mail.",
    ] {
        assert!(text.contains(sentence), "{sentence:?} not in {text}");
    }
}

#[tokio::test]
async fn a_long_link_arrives_whole() {
    let smtp = SmtpServer::start().await;
    let mailer = Mailer::new(&smtp.url(), "chronos@example.com").unwrap();
    let url = format!(
        "https://chronos.example.com/invites/accept?token={}&org=analytical",
        "Zq9".repeat(30)
    );
    mailer
        .send_invite(&InviteMail {
            url: url.clone(),
            ..invite("ada@example.com")
        })
        .await
        .unwrap();
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    // A line too long for 7bit: the link is broken by soft line breaks.
    assert_eq!(
        mails[0].header("Content-Transfer-Encoding").as_deref(),
        Some("quoted-printable")
    );
    assert!(body_text(&mails[0]).contains(&format!(" {url} ")));
}

/// The body as a reader sees it: quoted-printable undone, and all runs of
/// whitespace (line breaks of wrapped prose included) one space.
fn body_text(mail: &chronos_test_support::smtp::ReceivedMail) -> String {
    let (_, body) = mail.data.split_once("\r\n\r\n").expect("a body");
    let quoted = mail
        .header("Content-Transfer-Encoding")
        .is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"));
    let body = if quoted {
        decode_quoted_printable(body)
    } else {
        body.to_string()
    };
    format!(
        " {} ",
        body.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

fn decode_quoted_printable(text: &str) -> String {
    let text = text.replace("=\r\n", "");
    let mut out = Vec::new();
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'=' {
            let hex: Vec<u8> = bytes.by_ref().take(2).collect();
            let hex = std::str::from_utf8(&hex).expect("ASCII");
            out.push(u8::from_str_radix(hex, 16).expect("=XX"));
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

#[tokio::test]
async fn credentials_in_the_url_log_in() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url().replace("smtp://", "smtp://mailer:s3cret@");
    let mailer = Mailer::new(&url, "chronos@example.com").unwrap();
    mailer
        .send_invite(&invite("ada@example.com"))
        .await
        .unwrap();
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].auth_user.as_deref(), Some("mailer"));
}

/// A relay that takes the sender and refuses every recipient.
async fn refusing_relay() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 refusing relay\r\n").await.unwrap();
        while let Ok(Some(line)) = lines.next_line().await {
            let reply: &[u8] = match line.get(..4).map(str::to_ascii_uppercase).as_deref() {
                Some("RCPT") => b"550 5.1.1 no such mailbox here\r\n",
                Some("QUIT") => b"221 bye\r\n",
                _ => b"250 OK\r\n",
            };
            if write.write_all(reply).await.is_err() {
                break;
            }
        }
    });
    url
}

#[tokio::test]
async fn a_refusal_carries_the_relays_answer() {
    let url = refusing_relay().await;
    let mailer = Mailer::new(&url, "chronos@example.com").unwrap();
    let err = mailer
        .send_invite(&invite("nobody@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, MailError::Send(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("550"), "{message}");
    assert!(message.contains("no such mailbox here"), "{message}");
}

#[tokio::test]
async fn a_closed_port_fails_fast() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let mailer = Mailer::new(&format!("smtp://127.0.0.1:{port}"), "chronos@example.com")
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    let sent = tokio::time::timeout(
        Duration::from_secs(5),
        mailer.send_invite(&invite("ada@example.com")),
    )
    .await
    .expect("the mailer gave up within its timeout");
    assert!(
        matches!(sent, Err(MailError::Send(_) | MailError::Timeout(_))),
        "{sent:?}"
    );
}

#[tokio::test]
async fn a_relay_that_never_answers_times_out() {
    // Connections are queued by the kernel but never accepted: no greeting
    // ever comes, which lettre alone would wait for forever.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let mailer = Mailer::new(&url, "chronos@example.com")
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let sent = tokio::time::timeout(
        Duration::from_secs(5),
        mailer.send_invite(&invite("ada@example.com")),
    )
    .await
    .expect("the mailer gave up within its timeout");
    assert!(
        matches!(sent, Err(MailError::Timeout(t)) if t == Duration::from_millis(300)),
        "{sent:?}"
    );
    drop(listener);
}
