//! The shared test support (`tests/support`), and SDK clients for its servers.
#![allow(dead_code, unused_imports)]

pub use chronos_test_support::*;

/// SDK clients for a test server.
pub trait SdkClients {
    /// A client with the admin key.
    fn client(&self) -> chronos::Client;
    /// A client with a new key holding `scopes`.
    fn client_with_scopes(
        &self,
        scopes: &[&str],
    ) -> impl std::future::Future<Output = chronos::Client>;
}

impl SdkClients for TestServer {
    fn client(&self) -> chronos::Client {
        chronos::Client::new(&self.base, &self.admin_key).unwrap()
    }

    async fn client_with_scopes(&self, scopes: &[&str]) -> chronos::Client {
        chronos::Client::new(&self.base, self.key(scopes).await).unwrap()
    }
}
