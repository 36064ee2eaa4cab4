//! The controller: the CRD, reconcile against a mocked API, and on a real kube-apiserver.

mod apiserver;
mod crd;
mod gitops;
mod mocked;
mod templates;
