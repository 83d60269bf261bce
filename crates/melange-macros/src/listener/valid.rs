//! Checks the handlers of a listener and resolves each one to what it handles.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, LitStr, Receiver, ReturnType, Type};

use super::ast::{Cfg, Listener, Method};
use crate::errors::Errors;

/// A checked listener: what the generated `Consumer` dispatches to.
pub(crate) struct Consumer {
    /// The consumer's name: the type's name.
    pub(crate) name: String,
    /// The handlers bound to a manifest, in the order written.
    pub(crate) handlers: Vec<Handler>,
    /// The handlers of everything else, in the order written: at most one, or several under
    /// different configurations, at most one of which may be compiled.
    pub(crate) fallbacks: Vec<Handler>,
    /// Errors that depend on the configuration: two handlers of one manifest (or two fallbacks)
    /// under different `#[cfg]`s are an error only where both are compiled.
    pub(crate) conflicts: Vec<Conflict>,
}

/// A compile error under a configuration.
pub(crate) struct Conflict {
    /// Where it applies.
    pub(crate) cfg: Cfg,
    /// The `compile_error!` invocation.
    pub(crate) error: TokenStream,
}

/// A handler method.
pub(crate) struct Handler {
    /// The method's name.
    pub(crate) ident: Ident,
    /// The type of the message parameter.
    pub(crate) message: Type,
    /// The type of the context parameter, if the handler takes one.
    pub(crate) context: Option<Type>,
    /// Where the return type is (or would be) written.
    pub(crate) output: Span,
    /// What it handles.
    pub(crate) binding: Binding,
    /// The configuration it is compiled under.
    pub(crate) cfg: Cfg,
    /// The configurations under which it duplicates an earlier handler (reported by a
    /// [`Conflict`]), and is left out of the check that manifests are distinct.
    pub(crate) duplicates: Vec<Cfg>,
}

/// What a handler handles.
pub(crate) enum Binding {
    /// The manifest of its message type, `<T as Message>::MANIFEST`.
    MessageType,
    /// An explicit manifest.
    Manifest(LitStr),
    /// Whatever no other handler takes.
    Fallback,
}

const SHAPE: &str = "async fn on_event(&self, event: Event)";
const SKIP_HINT: &str = "if it is a helper rather than a handler, mark it `#[listener(skip)]` \
                         or move it to a separate `impl` block";

/// Checks every method, reporting all problems; returns the handlers that are well formed.
pub(crate) fn check(listener: &Listener, errors: &mut Errors) -> Consumer {
    let name = type_name(&listener.item.self_ty);
    let mut handlers = Vec::new();
    let mut fallbacks: Vec<Handler> = Vec::new();
    let mut conflicts = Vec::new();
    // Textual duplicates: the same message type, or the same explicit manifest, twice.
    let mut seen: HashMap<String, Vec<(Ident, Cfg)>> = HashMap::new();
    for method in &listener.methods {
        let Some(mut handler) = check_method(method, errors) else {
            continue;
        };
        match &handler.binding {
            Binding::Fallback => {
                let at = method
                    .options
                    .fallback
                    .as_ref()
                    .map_or_else(|| handler.ident.span(), Ident::span);
                let message = |first: &Ident| {
                    format!(
                        "`{first}` is already the fallback of `{name}`; a consumer has at most one \
                         fallback: bind this handler to a manifest with \
                         `#[listener(manifest = \"...\")]` or remove one"
                    )
                };
                if let Some(first) = fallbacks
                    .iter()
                    .find(|first| first.cfg.key() == handler.cfg.key())
                {
                    errors.at(at, message(&first.ident));
                    continue;
                }
                for first in &fallbacks {
                    conflicts.push(Conflict {
                        cfg: first.cfg.and(&handler.cfg),
                        error: syn::Error::new(at, message(&first.ident)).to_compile_error(),
                    });
                }
                fallbacks.push(handler);
            }
            Binding::MessageType | Binding::Manifest(_) => {
                let (key, shown, tokens) = match &handler.binding {
                    Binding::Manifest(lit) => (
                        format!("manifest {:?}", lit.value()),
                        format!("manifest {:?}", lit.value()),
                        lit.to_token_stream(),
                    ),
                    _ => {
                        let ty = handler.message.to_token_stream();
                        let text = ty.to_string();
                        (format!("type {text}"), format!("`{text}`"), ty)
                    }
                };
                let message = |first: &Ident| {
                    format!(
                        "{shown} is already handled by `{first}`; a consumer has one handler \
                         per manifest: merge the two handlers, or move one to another consumer"
                    )
                };
                let earlier = seen.entry(key).or_default();
                if let Some((first, _)) = earlier
                    .iter()
                    .find(|(_, cfg)| cfg.key() == handler.cfg.key())
                {
                    errors.spanned(tokens, message(first));
                    continue;
                }
                // Under different configurations, the two are duplicates only where both are
                // compiled.
                for (first, cfg) in earlier.iter() {
                    let both = cfg.and(&handler.cfg);
                    conflicts.push(Conflict {
                        cfg: both.clone(),
                        error: syn::Error::new_spanned(&tokens, message(first)).to_compile_error(),
                    });
                    handler.duplicates.push(both);
                }
                earlier.push((handler.ident.clone(), handler.cfg.clone()));
                handlers.push(handler);
            }
        }
    }
    Consumer {
        name,
        handlers,
        fallbacks,
        conflicts,
    }
}

/// The last path segment of the self type (`Orders` for `impl<S> Orders<S>`).
fn type_name(ty: &Type) -> String {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .map_or_else(|| ty.to_token_stream().to_string(), |s| s.ident.to_string()),
        other => other.to_token_stream().to_string(),
    }
}

/// Checks one method; `None` if it is skipped or malformed.
fn check_method(method: &Method, errors: &mut Errors) -> Option<Handler> {
    let Method { sig, options, cfg } = method;
    if let Some(skip) = &options.skip {
        if let Some(manifest) = &options.manifest {
            errors.spanned(
                manifest,
                "a skipped method is not a handler: remove `skip` or `manifest = ...`",
            );
        }
        if let Some(fallback) = &options.fallback {
            errors.spanned(
                fallback,
                "a skipped method is not a handler: remove `skip` or `fallback`",
            );
        }
        let _ = skip;
        return None;
    }
    let name = &sig.ident;
    let mut ok = true;
    if let (Some(manifest), Some(_)) = (&options.manifest, &options.fallback) {
        errors.spanned(
            manifest,
            "a fallback takes every manifest no other handler takes: remove `manifest = ...` \
             or `fallback`",
        );
        ok = false;
    }
    if let Some(manifest) = &options.manifest
        && manifest.value().is_empty()
    {
        errors.spanned(
            manifest,
            "the manifest must not be empty: `manifest = \"json\"`",
        );
        ok = false;
    }
    if sig.asyncness.is_none() {
        errors.spanned(
            sig.fn_token,
            format_args!(
                "handler `{name}` must be an `async fn`: `async fn {name}(...)`; {SKIP_HINT}"
            ),
        );
        ok = false;
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.spanned(
            unsafety,
            format_args!("handler `{name}` cannot be `unsafe`; {SKIP_HINT}"),
        );
        ok = false;
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(
            abi,
            format_args!("handler `{name}` cannot have an `extern` ABI"),
        );
        ok = false;
    }
    let type_params: proc_macro2::TokenStream = sig
        .generics
        .params
        .iter()
        .filter(|param| !matches!(param, syn::GenericParam::Lifetime(_)))
        .flat_map(|param| param.to_token_stream())
        .collect();
    if !type_params.is_empty() {
        errors.spanned(
            type_params,
            format_args!(
                "handler `{name}` cannot be generic: its message type must be known to dispatch \
                 on its manifest; write one handler per message type, or make the impl block \
                 generic (`impl<T> MyConsumer<T>`); {SKIP_HINT}"
            ),
        );
        ok = false;
    } else if let Some(where_clause) = &sig.generics.where_clause {
        errors.spanned(
            where_clause,
            format_args!(
                "handler `{name}` cannot have a `where` clause; put bounds on the impl block"
            ),
        );
        ok = false;
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, "handlers cannot be variadic");
        ok = false;
    }

    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver)) => {
            if !is_shared_self(receiver) {
                errors.spanned(
                    receiver,
                    format_args!(
                        "handler `{name}` must take `&self`: messages are processed \
                         concurrently by a shared consumer; keep state behind `&self` (atomics, \
                         a `Mutex`), as in `{SHAPE}`"
                    ),
                );
                ok = false;
            }
        }
        Some(other @ FnArg::Typed(_)) => {
            errors.spanned(
                other,
                format_args!(
                    "handler `{name}` must take `&self` first, as in `{SHAPE}`; {SKIP_HINT}"
                ),
            );
            return None;
        }
        None => {
            errors.at(
                sig.paren_token.span.join(),
                format_args!(
                    "handler `{name}` takes no parameters; it must take `&self` and the message, \
                     as in `{SHAPE}`; {SKIP_HINT}"
                ),
            );
            return None;
        }
    }
    let typed: Vec<&syn::PatType> = inputs
        .filter_map(|arg| match arg {
            FnArg::Typed(typed) => Some(typed),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let (message, context) = match typed.as_slice() {
        [] => {
            errors.at(
                sig.paren_token.span.join(),
                format_args!(
                    "handler `{name}` has no message parameter: add the message it handles after \
                     `&self`, as in `{SHAPE}`"
                ),
            );
            return None;
        }
        [message] => (message, None),
        [message, context] => (message, Some(context)),
        [_, _, extra @ ..] => {
            let extra: proc_macro2::TokenStream =
                extra.iter().flat_map(|arg| arg.to_token_stream()).collect();
            errors.spanned(
                extra,
                format_args!(
                    "handler `{name}` takes too many parameters: after `&self` come the message \
                     and, optionally, the context: `async fn {name}(&self, event: Event, ctx: \
                     MessageContext<'_>)`"
                ),
            );
            return None;
        }
    };
    if !ok {
        return None;
    }
    let binding = match (&options.manifest, &options.fallback) {
        (Some(manifest), _) => Binding::Manifest(manifest.clone()),
        (None, Some(_)) => Binding::Fallback,
        (None, None) => Binding::MessageType,
    };
    Some(Handler {
        ident: name.clone(),
        message: (*message.ty).clone(),
        context: context.map(|context| (*context.ty).clone()),
        output: match &sig.output {
            ReturnType::Default => sig.paren_token.span.close(),
            ReturnType::Type(_, ty) => ty.span(),
        },
        binding,
        cfg: cfg.clone(),
        duplicates: Vec::new(),
    })
}

/// `&self` or `&'a self` (also written `self: &Self`).
fn is_shared_self(receiver: &Receiver) -> bool {
    match &*receiver.ty {
        Type::Reference(reference) => {
            reference.mutability.is_none()
                && matches!(&*reference.elem, Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self"))
        }
        _ => false,
    }
}
