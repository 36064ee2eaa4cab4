//! The test cluster that `scripts/test.sh` starts: the library's
//! [`voice_operator::testkit::cluster`] helpers, with the kubeconfig the
//! script names.

pub use voice_operator::testkit::cluster::*;

use kube::Client;

/// Path of the test cluster's kubeconfig.
pub fn kubeconfig_path() -> String {
    std::env::var("VOICE_OPERATOR_TEST_KUBECONFIG").expect(
        "VOICE_OPERATOR_TEST_KUBECONFIG is not set: run the tests with scripts/test.sh, which starts kube-apiserver and etcd on loopback",
    )
}

/// A client for the test cluster.
pub async fn client() -> Client {
    client_from(&kubeconfig_path()).await
}

/// What a test on the API server starts with: a client, the CRDs
/// installed, and a namespace of its own named from `prefix`.
pub async fn with_namespace(prefix: &str) -> (Client, String) {
    let client = client().await;
    install_crd(&client).await;
    let ns = namespace(&client, prefix).await;
    (client, ns)
}
