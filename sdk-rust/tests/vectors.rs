//! The shared vectors: the worker protocol's (`proto/vectors/worker.json`):
//! every frame the SDK sends or receives reads and writes back identically,
//! and the invalid ones are refused; and the callbacks' and fan-outs'
//! (`proto/vectors/callbacks.json`): each signed callback is verified and
//! read by [`chronos::callback`], each refused one refused with its code,
//! and each publish's answer comes back from the client as its shape. The
//! Node and Python SDKs check the same files.

mod common;

use chronos::proto::worker::{ServerMessage, WorkerMessage};
use chronos::{
    Callback, Client, CreateMessage, MessagePublished, PublishMessage, QueuePublished, callback,
};
use common::{http_stand_in, known};
use serde_json::Value;

#[test]
fn every_frame_in_the_vectors_round_trips() {
    let vectors: Value =
        serde_json::from_str(include_str!("../../proto/vectors/worker.json")).unwrap();
    let worker = vectors["worker"].as_array().unwrap();
    let server = vectors["server"].as_array().unwrap();
    assert!(worker.len() >= 7 && server.len() >= 6);
    for v in worker {
        let frame: WorkerMessage = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(&serde_json::to_value(&frame).unwrap(), v);
    }
    for v in server {
        let frame: ServerMessage = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(&serde_json::to_value(&frame).unwrap(), v);
    }
    for bad in vectors["invalid_worker"].as_array().unwrap() {
        assert!(
            serde_json::from_value::<WorkerMessage>(bad["frame"].clone()).is_err(),
            "{bad}"
        );
    }
}

fn callback_vectors() -> Value {
    serde_json::from_str(include_str!("../../proto/vectors/callbacks.json")).unwrap()
}

/// `callback::parse_signed` on a vector case.
fn parse(case: &Value, secret: &str, window: i64) -> Result<Callback, chronos::Error> {
    callback::parse_signed(
        case["signature"].as_str(),
        case["timestamp"].as_str(),
        case["body"].as_str().unwrap().as_bytes(),
        &[secret],
        case["now"].as_i64().unwrap(),
        window,
    )
}

#[test]
fn signed_callbacks_are_verified_and_read_as_their_kind() {
    let v = callback_vectors();
    let (secret, window) = (
        v["secret"].as_str().unwrap(),
        v["window_seconds"].as_i64().unwrap(),
    );
    let cases = v["callbacks"].as_array().unwrap();
    assert!(cases.len() >= 3);
    for case in cases {
        let about = case["about"].as_str().unwrap();
        let read = parse(case, secret, window).unwrap_or_else(|e| panic!("{about}: {e}"));
        let kind = match &read {
            Callback::Delivery(_) => "delivery",
            Callback::Group(_) => "group",
        };
        assert_eq!(kind, case["kind"], "{about}");
        assert_eq!(
            serde_json::to_value(&read).unwrap(),
            case["event"],
            "{about}"
        );
        // The same body, unsigned, reads the same.
        let body = case["body"].as_str().unwrap().as_bytes();
        assert_eq!(callback::parse_unsigned(body).unwrap(), read, "{about}");
    }
    for case in v["refused"].as_array().unwrap() {
        let about = case["about"].as_str().unwrap();
        let err = parse(case, secret, window).expect_err(about);
        assert_eq!(err.code_or_kind(), case["error"], "{about}: {err}");
    }
}

#[tokio::test]
async fn a_publish_answers_a_fan_out_or_one_message() {
    let v = callback_vectors();
    let published = v["published"].as_array().unwrap().clone();
    assert!(published.iter().any(|c| c["fan_out"] == true));
    for case in published {
        let about = case["about"].as_str().unwrap().to_string();
        let answer = case["answer"].clone();
        let url = http_stand_in(move |method, path| match (method, path) {
            ("POST", "/v1/messages" | "/v1/queues/regional/messages") => (202, answer.clone()),
            _ => (
                404,
                serde_json::json!({"error": {"code": "not_found", "message": path}}),
            ),
        })
        .await;
        let client = Client::new(url, "chrns_test").unwrap();
        let (fan_out, written) = match case["route"].as_str().unwrap() {
            "message" => {
                let read = client
                    .send_message(&CreateMessage::default())
                    .await
                    .unwrap_or_else(|e| panic!("{about}: {e}"));
                let fan_out = matches!(read, MessagePublished::FanOut(_));
                (fan_out, serde_json::to_value(read).unwrap())
            }
            "queue" => {
                let read = client
                    .publish("regional", &PublishMessage::default())
                    .await
                    .unwrap_or_else(|e| panic!("{about}: {e}"));
                let fan_out = matches!(read, QueuePublished::FanOut(_));
                (fan_out, serde_json::to_value(read).unwrap())
            }
            other => panic!("{about}: no such route {other}"),
        };
        assert_eq!(fan_out, case["fan_out"], "{about}");
        assert_eq!(written, known(&case["answer"]), "{about}");
    }
}
