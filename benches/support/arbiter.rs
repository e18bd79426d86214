//! Running setup code on another arbiter (thread) and getting its result back.

use actix::Arbiter;
use tokio::sync::oneshot;

/// Runs `f` on `arbiter` and hands back what its future returns.
pub async fn on_arbiter<T, F>(arbiter: &Arbiter, f: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + 'static,
{
    let (tx, rx) = oneshot::channel();
    arbiter.spawn_fn(move || {
        actix_rt::spawn(async move {
            let _ = tx.send(f().await);
        });
    });
    rx.await.expect("the arbiter stopped before answering")
}
