//! Mail to people: invitations to an organization, sent over SMTP.
//!
//! The relay is named by a URL, as lettre reads it: `smtp://host:25` (plain),
//! `smtp://host:587?tls=required` (STARTTLS), `smtps://host:465` (implicit
//! TLS), with `user:password@` for relays that want a login. A mail is one
//! connection; every send is bounded by a timeout, since lettre's own only
//! bounds connecting and a relay that stops answering would hold the
//! request that sends the invite.

use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::{AsyncSmtpTransport, AsyncSmtpTransportBuilder};
use lettre::{AsyncTransport, Tokio1Executor};
use std::time::Duration;

/// How long a send may take, connecting included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid SMTP URL: {0}")]
    InvalidUrl(#[source] lettre::transport::smtp::Error),
    #[error("invalid sender address `{0}`: {1}")]
    InvalidFrom(String, #[source] lettre::address::AddressError),
    #[error("invalid e-mail address `{0}`: {1}")]
    InvalidTo(String, #[source] lettre::address::AddressError),
    #[error("building the mail failed: {0}")]
    Build(#[source] lettre::error::Error),
    /// Display includes the relay's answer, such as
    /// `permanent error (550): mailbox unavailable`.
    #[error("sending the mail failed: {0}")]
    Send(#[source] lettre::transport::smtp::Error),
    #[error("sending the mail took longer than {0:?}")]
    Timeout(Duration),
}

/// An invitation to join an organization.
#[derive(Clone, Debug)]
pub struct InviteMail {
    pub to: String,
    pub organization: String,
    pub role: String,
    /// Who sent it, as the mail names them (a name or an e-mail).
    pub invited_by: Option<String>,
    /// Where to accept it.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// Sends mail through one SMTP relay.
#[derive(Clone)]
pub struct Mailer {
    builder: AsyncSmtpTransportBuilder,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

impl std::fmt::Debug for Mailer {
    // Not the transport: its credentials would be printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer on the relay at `smtp_url`, sending as `from`
    /// (`chronos@example.com` or `Chronos <chronos@example.com>`).
    pub fn new(smtp_url: &str, from: &str) -> Result<Mailer, MailError> {
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| MailError::InvalidFrom(from.to_string(), e))?;
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(MailError::InvalidUrl)?;
        Ok(Mailer {
            transport: build(&builder, DEFAULT_TIMEOUT),
            builder,
            from,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same mailer with another bound on each send (tests use a short
    /// one).
    pub fn with_timeout(mut self, timeout: Duration) -> Mailer {
        self.transport = build(&self.builder, timeout);
        self.timeout = timeout;
        self
    }

    /// Sends `mail`'s invitation; done once the relay has taken it.
    pub async fn send_invite(&self, mail: &InviteMail) -> Result<(), MailError> {
        let to = mail
            .to
            .parse::<Mailbox>()
            .map_err(|e| MailError::InvalidTo(mail.to.clone(), e))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(invite_subject(mail))
            .header(ContentType::TEXT_PLAIN)
            .body(invite_body(mail))
            .map_err(MailError::Build)?;
        self.send(message).await
    }

    async fn send(&self, message: Message) -> Result<(), MailError> {
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(MailError::Send(e)),
            Err(_) => Err(MailError::Timeout(self.timeout)),
        }
    }
}

fn build(
    builder: &AsyncSmtpTransportBuilder,
    timeout: Duration,
) -> AsyncSmtpTransport<Tokio1Executor> {
    builder.clone().timeout(Some(timeout)).build()
}

/// Text given by people (an organization's name, a role) on one line: a line
/// break in it must not shape the mail.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn invite_subject(mail: &InviteMail) -> String {
    format!(
        "You're invited to {} on Chronos",
        one_line(&mail.organization)
    )
}

fn invite_body(mail: &InviteMail) -> String {
    let organization = one_line(&mail.organization);
    let role = one_line(&mail.role);
    let who = match &mail.invited_by {
        Some(by) => format!("{} invited you", one_line(by)),
        None => "You have been invited".to_string(),
    };
    let expires = mail.expires_at.format("%Y-%m-%d at %H:%M UTC");
    [
        "Hello,".to_string(),
        wrap(&format!(
            "{who} to join {organization} on Chronos as {role}."
        )),
        "To accept, open this link:".to_string(),
        // Never wrapped: a link must stay whole. A long one makes the body
        // quoted-printable, which mail programs undo.
        one_line(&mail.url),
        format!("The link expires on {expires}."),
        "If you did not expect this, ignore this mail.".to_string(),
    ]
    .join("\n\n")
        + "\n"
}

/// Lines of prose kept under 76 characters, so that an ASCII body goes as
/// 7bit text, readable as sent, rather than quoted-printable.
const WRAP_AT: usize = 72;

fn wrap(text: &str) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let len = word.chars().count();
        if line_len > 0 && line_len + 1 + len > WRAP_AT {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn invite() -> InviteMail {
        InviteMail {
            to: "ada@example.com".into(),
            organization: "Analytical\r\nBcc: eve@example.com".into(),
            role: "admin".into(),
            invited_by: Some("Charles Babbage".into()),
            url: "https://chronos.example.com/invites/abc".into(),
            expires_at: Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap(),
        }
    }

    #[test]
    fn the_body_says_who_what_where_and_until_when() {
        let body = invite_body(&invite());
        assert!(body.lines().all(|l| l.len() < 76), "{body}");
        assert!(
            body.contains(
                "Charles Babbage invited you to join Analytical Bcc: eve@example.com on\nChronos as admin."
            ),
            "{body}"
        );
        assert!(
            body.contains("\nhttps://chronos.example.com/invites/abc\n"),
            "{body}"
        );
        assert!(
            body.contains("The link expires on 2030-01-02 at 03:04 UTC."),
            "{body}"
        );
        assert!(
            body.contains("If you did not expect this, ignore this mail."),
            "{body}"
        );

        let anonymous = InviteMail {
            invited_by: None,
            ..invite()
        };
        assert!(invite_body(&anonymous).contains("You have been invited to join"));
    }

    #[test]
    fn prose_wraps_but_links_do_not() {
        assert_eq!(wrap("a  b c"), "a b c");
        let long = "word ".repeat(30);
        let wrapped = wrap(&long);
        assert!(wrapped.lines().all(|l| l.len() <= WRAP_AT), "{wrapped}");
        assert_eq!(wrapped.split_whitespace().count(), 30);
        let url = format!("https://chronos.example.com/invites/{}", "k".repeat(100));
        let body = invite_body(&InviteMail {
            url: url.clone(),
            ..invite()
        });
        assert!(body.lines().any(|l| l == url), "{body}");
    }

    #[test]
    fn the_subject_is_one_line() {
        assert_eq!(
            invite_subject(&invite()),
            "You're invited to Analytical  Bcc: eve@example.com on Chronos"
        );
    }

    #[test]
    fn addresses_and_urls_are_checked() {
        assert!(matches!(
            Mailer::new("smtp://127.0.0.1:2525", "not an address"),
            Err(MailError::InvalidFrom(..))
        ));
        assert!(matches!(
            Mailer::new("ftp://127.0.0.1", "chronos@example.com"),
            Err(MailError::InvalidUrl(_))
        ));
        assert!(matches!(
            Mailer::new("not a url", "chronos@example.com"),
            Err(MailError::InvalidUrl(_))
        ));
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://user:secret@mail.example.com:587?tls=required",
            "smtps://mail.example.com",
        ] {
            let mailer = Mailer::new(url, "Chronos <chronos@example.com>").unwrap();
            assert!(!format!("{mailer:?}").contains("secret"));
        }
    }

    #[tokio::test]
    async fn a_bad_recipient_is_refused_before_connecting() {
        // Nothing listens on port 9; the address is refused first.
        let mailer = Mailer::new("smtp://127.0.0.1:9", "chronos@example.com").unwrap();
        let bad = InviteMail {
            to: "not an address".into(),
            ..invite()
        };
        assert!(matches!(
            mailer.send_invite(&bad).await,
            Err(MailError::InvalidTo(..))
        ));
    }
}
