//! `forward_backend!`: the forwarding half of a `MessagingBackend` wrapper.
//!
//! Tests and benches wrap a backend to count, record or slow down a call or two, and must
//! forward every other method to the wrapped one; by hand that was about 100 lines per
//! wrapper. The `it` test binary and the benches are separate crates, so each includes this
//! file with `#[path]`, as a module named `forward` at its crate root (the macro calls itself
//! through `$crate::forward`). Cargo does not make it a target of its own: it discovers only
//! `tests/*.rs` and `tests/*/main.rs`.

/// Written inside `impl MessagingBackend for Wrapper`: every trait method, as a call to the
/// same method of `self.$field`, except those named after `except`. The impl writes those
/// itself, or leaves them to the trait's default (which goes through the single-entry
/// methods). A name that is no method is ignored: a misspelt override then fails to compile
/// (defined twice), but a misspelt default is forwarded.
///
/// ```ignore
/// impl<B: MessagingBackend> MessagingBackend for Counting<B> {
///     forward_backend!(inner, except receive);
///
///     async fn receive(&self, queue: &str, options: &ReceiveOptions) -> ... {
///         self.count.fetch_add(1, Ordering::Relaxed);
///         self.inner.receive(queue, options).await
///     }
/// }
/// ```
macro_rules! forward_backend {
    // The entry point. The table is the trait's methods, with full paths so that a wrapper's
    // module imports only what its own methods use.
    ($field:ident $(, except $($except:ident),+)? $(,)?) => {
        $crate::forward::forward_backend!(@each $field [$($($except)+)?]
            declare_queue {(spec: &::melange::backend::QueueSpec) -> ::melange::backend::QueueInfo}
            get_queue {(name: &str) -> ::melange::backend::QueueInfo}
            delete_queue {(name: &str) -> ()}
            declare_topic {(name: &str) -> ()}
            delete_topic {(name: &str) -> ()}
            subscribe {(queue: &str, topic: &str, manifest_filter: Option<&[String]>) -> ()}
            publish_to_queue {
                (queue: &str, message: ::melange::envelope::OutgoingMessage) -> String
            }
            publish_batch_to_queue {
                (queue: &str, messages: Vec<::melange::envelope::OutgoingMessage>)
                    -> ::melange::backend::BatchResult<String>
            }
            publish_to_topic {
                (topic: &str, message: ::melange::envelope::OutgoingMessage) -> String
            }
            publish_batch_to_topic {
                (topic: &str, messages: Vec<::melange::envelope::OutgoingMessage>)
                    -> ::melange::backend::BatchResult<String>
            }
            receive {
                (queue: &str, options: &::melange::envelope::ReceiveOptions)
                    -> ::melange::backend::Received
            }
            acknowledge {(queue: &str, receipt: &::melange::envelope::ReceiptHandle) -> ()}
            acknowledge_batch {
                (queue: &str, receipts: &[::melange::envelope::ReceiptHandle])
                    -> ::melange::backend::BatchResult<()>
            }
            change_visibility {
                (
                    queue: &str,
                    receipt: &::melange::envelope::ReceiptHandle,
                    timeout: ::std::time::Duration
                ) -> ()
            }
            change_visibility_batch {
                (
                    queue: &str,
                    entries: &[(::melange::envelope::ReceiptHandle, ::std::time::Duration)]
                ) -> ::melange::backend::BatchResult<()>
            }
        );
    };

    // One method of the table at a time.
    (@each $field:ident $except:tt $($method:ident $sig:tt)*) => {
        $($crate::forward::forward_backend!(@unless $field $except $method $sig);)*
    };

    // `$method` heads the `except` list: written by the impl, or the trait's default.
    (@unless $f:ident [declare_queue $($r:ident)*] declare_queue $s:tt) => {};
    (@unless $f:ident [get_queue $($r:ident)*] get_queue $s:tt) => {};
    (@unless $f:ident [delete_queue $($r:ident)*] delete_queue $s:tt) => {};
    (@unless $f:ident [declare_topic $($r:ident)*] declare_topic $s:tt) => {};
    (@unless $f:ident [delete_topic $($r:ident)*] delete_topic $s:tt) => {};
    (@unless $f:ident [subscribe $($r:ident)*] subscribe $s:tt) => {};
    (@unless $f:ident [publish_to_queue $($r:ident)*] publish_to_queue $s:tt) => {};
    (@unless $f:ident [publish_batch_to_queue $($r:ident)*] publish_batch_to_queue $s:tt) => {};
    (@unless $f:ident [publish_to_topic $($r:ident)*] publish_to_topic $s:tt) => {};
    (@unless $f:ident [publish_batch_to_topic $($r:ident)*] publish_batch_to_topic $s:tt) => {};
    (@unless $f:ident [receive $($r:ident)*] receive $s:tt) => {};
    (@unless $f:ident [acknowledge $($r:ident)*] acknowledge $s:tt) => {};
    (@unless $f:ident [acknowledge_batch $($r:ident)*] acknowledge_batch $s:tt) => {};
    (@unless $f:ident [change_visibility $($r:ident)*] change_visibility $s:tt) => {};
    (@unless $f:ident [change_visibility_batch $($r:ident)*] change_visibility_batch $s:tt) => {};
    // Another name: look further down the list (macro_rules cannot compare two idents).
    (@unless $field:ident [$other:ident $($rest:ident)*] $method:ident $sig:tt) => {
        $crate::forward::forward_backend!(@unless $field [$($rest)*] $method $sig);
    };
    // Not named: forward it. The call names the trait, so no import is needed for it.
    (@unless $field:ident [] $method:ident {($($arg:ident: $ty:ty),*) -> $ok:ty}) => {
        async fn $method(
            &self,
            $($arg: $ty),*
        ) -> ::std::result::Result<$ok, ::melange::BackendError> {
            ::melange::MessagingBackend::$method(&self.$field, $($arg),*).await
        }
    };
}
pub(crate) use forward_backend;
