//! The interface between the control plane and a node's overlay executor.
//!
//! The control plane's [`super::driver`] calls these methods as the Raft log
//! moves a transition through its phases; the data plane (issue "Data
//! plane") implements them on real overlays. Until then the daemon runs
//! [`NoOverlay`], which has no overlay to build and succeeds at once, and
//! tests use [`ScriptedExecutor`], which can be told to fail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use futures::future::BoxFuture;

use crate::model::{OverlayConfig, Topology, TransitionId};

/// An executor's failure, as a value; its text (`Display`) is the reason
/// reported through the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// A prepare or verify check did not pass.
    #[error(transparent)]
    Check(#[from] crate::executor::CheckFailure),
    /// The overlay could not be built from its config.
    #[error("cannot build the {topology} overlay: {error}")]
    Build {
        topology: Topology,
        error: crate::overlay::any::BuildError,
    },
    /// A prepare with no current overlay to prepare beside.
    #[error("no current overlay to prepare beside")]
    NoCurrent,
    /// A cut-over to a transition this node has not prepared.
    #[error("no prepared overlay for transition {id}")]
    NotPrepared { id: TransitionId },
    /// A verify with no overlay running.
    #[error("no overlay is running")]
    NoOverlay,
    /// The executor task has stopped (the node is shutting down).
    #[error("the executor has stopped")]
    Stopped,
    /// A failure a test executor was told to produce.
    #[error("{what} failed (scripted)")]
    Scripted { what: String },
}

/// What a node's overlay executor does at each phase of a switch.
pub trait Executor: Send + Sync + 'static {
    /// Builds `topology` directly as the current overlay (start-up,
    /// catch-up, snapshot); `instance` is the transition that created it.
    fn build_current(
        &self,
        instance: TransitionId,
        topology: Topology,
        config: OverlayConfig,
    ) -> BoxFuture<'static, Result<(), ExecError>>;
    /// Starts `topology` beside the current overlay, waits until it has
    /// formed and verifies it.
    fn prepare(
        &self,
        id: TransitionId,
        topology: Topology,
        config: OverlayConfig,
    ) -> BoxFuture<'static, Result<(), ExecError>>;
    /// Cuts over to the prepared overlay `id`; the old one drains.
    fn cut_over(&self, id: TransitionId) -> BoxFuture<'static, Result<(), ExecError>>;
    /// Tears down the shadow overlay `id`; the current one is untouched.
    fn abort(&self, id: TransitionId) -> BoxFuture<'static, Result<(), ExecError>>;
    /// Checks the current overlay's health after a cut-over.
    fn verify(&self) -> BoxFuture<'static, Result<(), ExecError>>;
}

/// The daemon's executor until the data plane exists: there is no overlay
/// to build, so every phase succeeds as soon as the entry is applied.
#[derive(Debug, Default)]
pub struct NoOverlay;

fn ready() -> BoxFuture<'static, Result<(), ExecError>> {
    Box::pin(async { Ok(()) })
}

impl Executor for NoOverlay {
    fn build_current(
        &self,
        _: TransitionId,
        _: Topology,
        _: OverlayConfig,
    ) -> BoxFuture<'static, Result<(), ExecError>> {
        ready()
    }
    fn prepare(
        &self,
        _: TransitionId,
        _: Topology,
        _: OverlayConfig,
    ) -> BoxFuture<'static, Result<(), ExecError>> {
        ready()
    }
    fn cut_over(&self, _: TransitionId) -> BoxFuture<'static, Result<(), ExecError>> {
        ready()
    }
    fn abort(&self, _: TransitionId) -> BoxFuture<'static, Result<(), ExecError>> {
        ready()
    }
    fn verify(&self) -> BoxFuture<'static, Result<(), ExecError>> {
        ready()
    }
}

/// A test executor that succeeds unless told to fail, and records the calls
/// it received.
#[derive(Debug, Default)]
pub struct ScriptedExecutor {
    fail_prepare: AtomicBool,
    fail_verify: AtomicBool,
    hang_verify: AtomicBool,
    hang_prepare: AtomicBool,
    calls: Mutex<Vec<String>>,
}

impl ScriptedExecutor {
    /// Makes `prepare` fail (true) or succeed (false).
    pub fn set_fail_prepare(&self, fail: bool) {
        self.fail_prepare.store(fail, Ordering::SeqCst);
    }
    /// Makes `verify` after a cut-over fail (true) or succeed (false).
    pub fn set_fail_verify(&self, fail: bool) {
        self.fail_verify.store(fail, Ordering::SeqCst);
    }
    /// Makes `verify` never finish (a long post-cut-over watch).
    pub fn set_hang_verify(&self, hang: bool) {
        self.hang_verify.store(hang, Ordering::SeqCst);
    }
    /// Makes `prepare` never finish (the node never reports).
    pub fn set_hang_prepare(&self, hang: bool) {
        self.hang_prepare.store(hang, Ordering::SeqCst);
    }
    /// The calls received so far, e.g. `prepare 7 hyparview`.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls lock poisoned").clone()
    }
    fn record(&self, call: String) {
        self.calls.lock().expect("calls lock poisoned").push(call);
    }
    fn outcome(fail: bool, what: &str) -> BoxFuture<'static, Result<(), ExecError>> {
        let result = if fail {
            Err(ExecError::Scripted {
                what: what.to_string(),
            })
        } else {
            Ok(())
        };
        Box::pin(async move { result })
    }
}

impl Executor for ScriptedExecutor {
    fn build_current(
        &self,
        instance: TransitionId,
        topology: Topology,
        _: OverlayConfig,
    ) -> BoxFuture<'static, Result<(), ExecError>> {
        self.record(format!("build {instance} {topology}"));
        ready()
    }
    fn prepare(
        &self,
        id: TransitionId,
        topology: Topology,
        _: OverlayConfig,
    ) -> BoxFuture<'static, Result<(), ExecError>> {
        self.record(format!("prepare {id} {topology}"));
        if self.hang_prepare.load(Ordering::SeqCst) {
            return Box::pin(std::future::pending());
        }
        Self::outcome(self.fail_prepare.load(Ordering::SeqCst), "prepare")
    }
    fn cut_over(&self, id: TransitionId) -> BoxFuture<'static, Result<(), ExecError>> {
        self.record(format!("cut_over {id}"));
        ready()
    }
    fn abort(&self, id: TransitionId) -> BoxFuture<'static, Result<(), ExecError>> {
        self.record(format!("abort {id}"));
        ready()
    }
    fn verify(&self) -> BoxFuture<'static, Result<(), ExecError>> {
        self.record("verify".to_string());
        if self.hang_verify.load(Ordering::SeqCst) {
            return Box::pin(std::future::pending());
        }
        Self::outcome(self.fail_verify.load(Ordering::SeqCst), "verify")
    }
}
