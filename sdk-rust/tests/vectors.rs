//! The shared worker-protocol vectors (`proto/vectors/worker.json`): every
//! frame the SDK sends or receives reads and writes back identically, and
//! the invalid ones are refused. The Node and Python SDKs check the same file.

use chronos::proto::worker::{ServerMessage, WorkerMessage};
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
