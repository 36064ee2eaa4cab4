//! What GitOps tools make of an object, from the tools' own code:
//! `tools/gitops-status` (kstatus from sigs.k8s.io/cli-utils, Argo CD's
//! Lua health check in gopher-lua) and the kubectl that
//! `scripts/kube-tools.sh --kubectl` builds. `scripts/test.sh` builds both
//! and names them in the environment.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde::Deserialize;
use serde_json::Value;

/// A status and its message, as kstatus or an Argo CD health check gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Verdict {
    pub status: String,
    pub message: String,
}

/// The health check the chart ships for Argo CD.
pub fn argo_health_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("charts/voice-operator/argocd/voiceagent-health.lua")
}

fn tool(var: &str, what: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "{var} is not set: run the tests with scripts/test.sh, which builds {what} and sets it"
        )
    })
}

/// Runs `gitops-status <args>` with `object` on standard input: the
/// verdict, or what it printed on standard error.
pub fn try_gitops_status(args: &[&str], object: &Value) -> Result<Verdict, String> {
    let mut child = Command::new(tool(
        "VOICE_OPERATOR_TEST_GITOPS_STATUS",
        "tools/gitops-status",
    ))
    .args(args)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("gitops-status starts");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(object.to_string().as_bytes())
        .expect("gitops-status reads the object");
    let out = child.wait_with_output().expect("gitops-status ends");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("gitops-status prints its JSON verdict"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// kstatus' `status.Compute` of `object`.
pub fn kstatus(object: &Value) -> Verdict {
    try_gitops_status(&["kstatus"], object).unwrap_or_else(|e| panic!("kstatus failed: {e}"))
}

/// The chart's Argo CD health check over `object`, run as Argo CD runs it.
pub fn argo_health(object: &Value) -> Verdict {
    let script = argo_health_script();
    try_gitops_status(
        &["argo-health", script.to_str().expect("a UTF-8 path")],
        object,
    )
    .unwrap_or_else(|e| panic!("the Argo CD health check failed: {e}"))
}

/// kubectl against the test cluster, to the end.
pub fn kubectl(args: &[&str]) -> Output {
    Command::new(tool(
        "VOICE_OPERATOR_TEST_KUBECTL",
        "kubectl (scripts/kube-tools.sh --kubectl)",
    ))
    .args(args)
    .env("KUBECONFIG", super::cluster::kubeconfig_path())
    .output()
    .expect("kubectl runs")
}
