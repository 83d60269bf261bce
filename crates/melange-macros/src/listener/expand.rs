//! The `Consumer` impl of a checked listener. Produces no errors of its own.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Generics, Type, parse_quote};

use super::ast::{Cfg, Listener};
use super::valid::{Binding, Consumer, Handler};

/// How generated code reaches one handler's manifest and decoder.
struct Route {
    /// Items defined next to the impl (non-generic routes).
    item: Option<TokenStream>,
    /// The handler's manifest, a constant expression.
    manifest: TokenStream,
    /// Decodes the message from `__melange_ctx`, giving a `Result<T, SerializationError>`.
    decode: TokenStream,
    /// Decodes JSON content (a `&str`), giving a `Result<T, serde_json::Error>`: the fast path,
    /// taken in place of `decode` for JSON messages, when the route has one.
    from_json: Option<TokenStream>,
}

/// The user's impl block is emitted by the caller; this is everything added next to it.
pub(crate) fn consumer_impl(listener: &Listener, consumer: &Consumer) -> TokenStream {
    let private = quote!(::melange::__private);
    let generics = consumer_generics(&listener.item.generics);
    let generic = !listener.item.generics.params.is_empty();
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let self_ty = &listener.item.self_ty;
    let name = &consumer.name;

    let routes: Vec<Route> = consumer
        .handlers
        .iter()
        .enumerate()
        .map(|(index, handler)| route(index, handler, generic))
        .collect();
    let route_items = routes.iter().filter_map(|route| route.item.as_ref());
    let conflicts = consumer.conflicts.iter().map(|conflict| {
        let cfg = conflict.cfg.attr();
        let error = &conflict.error;
        quote!(#cfg #error)
    });

    let duplicate_check = (routes.len() > 1).then(|| {
        // Each manifest is under its handler's `#[cfg]`: only compiled handlers are compared.
        let manifests = consumer
            .handlers
            .iter()
            .zip(&routes)
            .map(|(handler, route)| {
                let cfg = handler.cfg.attr();
                let manifest = &route.manifest;
                // A duplicate of an earlier handler under some configuration is reported there by
                // its own error, not again by this check.
                let not_duplicate = (!handler.duplicates.is_empty()).then(|| {
                    let duplicates = handler.duplicates.iter().map(Cfg::predicate);
                    quote!(#[cfg(not(any(#(#duplicates),*)))])
                });
                quote!(#cfg #not_duplicate #manifest)
            });
        let message = duplicate_message(consumer);
        let check = quote! {
            if #private::has_duplicate(&[#(#manifests),*]) {
                ::core::panic!("{}", #message)
            }
        };
        check
    });
    // Non-generic consumers are checked where they are defined; generic ones when used. A
    // message type that names `Self` can only be named inside an impl of the type: there, the
    // check is an associated constant of a trait private to this expansion, which a constant
    // next to it evaluates.
    let names_self = consumer.handlers.iter().any(|handler| {
        matches!(handler.binding, Binding::MessageType) && mentions_self(&handler.message)
    });
    let (module_check, consume_check) = match duplicate_check {
        Some(check) if generic => (None, Some(quote!(const { #check };))),
        Some(check) if names_self => (
            Some(quote! {
                trait __MelangeDistinctManifests {
                    const CHECK: ();
                }
                impl #impl_generics __MelangeDistinctManifests for #self_ty #where_clause {
                    const CHECK: () = #check;
                }
                const _: () = <#self_ty as __MelangeDistinctManifests>::CHECK;
            }),
            None,
        ),
        Some(check) => (Some(quote!(const _: () = #check;)), None),
        None => (None, None),
    };

    // Whether a fallback is compiled: then every manifest is accepted.
    let (some_fallback, no_fallback) = fallback_cfgs(&consumer.fallbacks);
    let accepts_all = some_fallback.map(|cfg| {
        quote! {
            #cfg
            #[inline]
            fn accepts(&self, _manifest: #private::Option<&str>) -> bool {
                true
            }
        }
    });
    let accepts_some = no_fallback.as_ref().map(|cfg| {
        if routes.is_empty() {
            quote! {
                #cfg
                #[inline]
                fn accepts(&self, _manifest: #private::Option<&str>) -> bool {
                    false
                }
            }
        } else {
            let arms = consumer
                .handlers
                .iter()
                .zip(&routes)
                .map(|(handler, route)| {
                    let cfg = handler.cfg.attr();
                    let manifest = &route.manifest;
                    quote! {
                        #cfg
                        #private::Option::Some(manifest) if manifest == #manifest => true,
                    }
                });
            quote! {
                #cfg
                #[inline]
                fn accepts(&self, manifest: #private::Option<&str>) -> bool {
                    match manifest {
                        #(#arms)*
                        _ => false,
                    }
                }
            }
        }
    });

    let dispatch = (!routes.is_empty()).then(|| {
        let arms = consumer
            .handlers
            .iter()
            .zip(&routes)
            .map(|(handler, route)| {
                let cfg = handler.cfg.attr();
                let manifest = &route.manifest;
                let call = call_handler(name, handler, route);
                quote! {
                    #cfg
                    if __melange_manifest == #manifest {
                        #call
                    }
                }
            });
        quote! {
            if let #private::Option::Some(__melange_manifest) = __melange_ctx.manifest() {
                #(#arms)*
            }
        }
    });
    // At most one fallback is compiled (the others are conflicts); the tail returns, so each
    // is a statement, as is the error when none is compiled.
    let fallbacks = consumer.fallbacks.iter().map(|fallback| {
        let cfg = fallback.cfg.attr();
        // Its binding is `Fallback`: the index and genericity play no part.
        let call = call_handler(name, fallback, &route(0, fallback, generic));
        quote!(#cfg { #call })
    });
    let unaccepted = no_fallback.map(|cfg| {
        quote! {
            #cfg
            {
                #private::Result::Err(#private::unaccepted(#name, __melange_ctx.manifest()))
            }
        }
    });
    let tail = quote!(#(#fallbacks)* #unaccepted);

    quote! {
        const _: () = {
            #(#route_items)*
            #module_check
            #(#conflicts)*

            #[automatically_derived]
            impl #impl_generics #private::Consumer for #self_ty #where_clause {
                #[inline]
                fn name(&self) -> &'static str {
                    #name
                }

                #accepts_all
                #accepts_some

                fn consume<'__melange>(
                    &'__melange self,
                    __melange_ctx: #private::MessageContext<'__melange>,
                ) -> impl #private::Future<
                    Output = #private::Result<(), #private::ConsumeError>,
                > + #private::Send + '__melange {
                    #consume_check
                    async move {
                        #dispatch
                        #tail
                    }
                }
            }
        };
    }
}

/// A `Consumer` impl that takes nothing, emitted when the listener has errors so that uses of
/// the type as a consumer add none.
pub(crate) fn stand_in_impl(listener: &Listener, consumer: &Consumer) -> TokenStream {
    if listener.item.trait_.is_some() {
        return TokenStream::new();
    }
    let private = quote!(::melange::__private);
    let generics = consumer_generics(&listener.item.generics);
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let self_ty = &listener.item.self_ty;
    let name = &consumer.name;
    quote! {
        #[automatically_derived]
        impl #impl_generics #private::Consumer for #self_ty #where_clause {
            fn accepts(&self, _manifest: #private::Option<&str>) -> bool {
                false
            }

            fn consume<'__melange>(
                &'__melange self,
                __melange_ctx: #private::MessageContext<'__melange>,
            ) -> impl #private::Future<
                Output = #private::Result<(), #private::ConsumeError>,
            > + #private::Send + '__melange {
                async move {
                    #private::Result::Err(#private::unaccepted(#name, __melange_ctx.manifest()))
                }
            }
        }
    }
}

/// The `#[cfg(...)]` attributes under which a fallback is compiled and under which none is; an
/// empty attribute when that is always the case, `None` when it never is.
fn fallback_cfgs(fallbacks: &[Handler]) -> (Option<TokenStream>, Option<TokenStream>) {
    if fallbacks.is_empty() {
        (None, Some(TokenStream::new()))
    } else if fallbacks.iter().any(|fallback| fallback.cfg.is_always()) {
        (Some(TokenStream::new()), None)
    } else {
        let predicates = fallbacks.iter().map(|fallback| fallback.cfg.predicate());
        let predicate = quote!(any(#(#predicates),*));
        (
            Some(quote!(#[cfg(#predicate)])),
            Some(quote!(#[cfg(not(#predicate))])),
        )
    }
}

/// The impl block's generics, plus the bounds `Consumer` needs of a generic type.
fn consumer_generics(generics: &Generics) -> Generics {
    let mut generics = generics.clone();
    if !generics.params.is_empty() {
        generics.make_where_clause().predicates.push(parse_quote! {
            Self: ::melange::__private::Send + ::melange::__private::Sync + 'static
        });
    }
    generics
}

/// The manifest and decoder of a handler bound to a manifest.
fn route(index: usize, handler: &Handler, generic: bool) -> Route {
    let private = quote!(::melange::__private);
    match &handler.binding {
        Binding::MessageType => {
            let ty = &handler.message;
            // `Route::<T>::for_message()` is the one place that requires `T: Message`, spanned at `T`,
            // so a type that is not a message gets one error, there.
            let new_route = quote_spanned! {ty.span()=>
                ::melange::__private::Route::<#ty>::for_message()
            };
            if generic || mentions_self(ty) {
                let route = quote!((const { #new_route }));
                Route {
                    item: None,
                    manifest: quote!(#route.manifest),
                    decode: quote!((#route.decode)(__melange_ctx)),
                    from_json: Some(quote!(#route.from_json)),
                }
            } else {
                let constant = format_ident!("__MELANGE_ROUTE_{}", index);
                let cfg = handler.cfg.attr();
                Route {
                    item: Some(quote! {
                        #cfg
                        const #constant: #private::Route<#ty> = #new_route;
                    }),
                    manifest: quote!(#constant.manifest),
                    decode: quote!((#constant.decode)(__melange_ctx)),
                    from_json: Some(quote!(#constant.from_json)),
                }
            }
        }
        Binding::Manifest(manifest) => Route {
            item: None,
            manifest: manifest.to_token_stream(),
            decode: decode_with_serde(&handler.message),
            from_json: None,
        },
        // Not routed by manifest; `consumer_impl` handles it.
        Binding::Fallback => Route {
            item: None,
            manifest: TokenStream::new(),
            decode: decode_with_serde(&handler.message),
            from_json: None,
        },
    }
}

/// Decoding into a type that only needs `DeserializeOwned`, spanned at the type.
fn decode_with_serde(ty: &Type) -> TokenStream {
    let rebind = rebind_ctx(ty.span());
    let decode = quote_spanned! {ty.span()=>
        ::melange::__private::MessageContext::decode::<#ty>(&__melange_ctx)
    };
    quote!({ #rebind #decode })
}

/// Binds `__melange_ctx` again with the hygiene of `span`, for code spanned there to name it.
///
/// Generated code is spanned at the user's types so that errors point there, but an identifier
/// also takes its span's hygiene: when the listener is written in a `macro_rules!` macro and the
/// type is one of its fragments, a local declared by `quote!` (call-site hygiene) is not found
/// under the type's span. The context is `Copy` (two references): binding it again costs nothing.
fn rebind_ctx(span: Span) -> TokenStream {
    let ctx = Ident::new("__melange_ctx", span);
    quote!(let #ctx = __melange_ctx;)
}

/// Decodes, calls the handler and returns its outcome.
fn call_handler(consumer: &str, handler: &Handler, route: &Route) -> TokenStream {
    let private = quote!(::melange::__private);
    let decode = &route.decode;
    let decode = quote! {
        match #decode {
            #private::Result::Ok(message) => message,
            #private::Result::Err(error) => {
                return #private::Result::Err(#private::ConsumeError::Decode(error));
            }
        }
    };
    // JSON, the common case, is decoded right here: in place, it measured about 8% faster per
    // message than through the registry's generic decoder at 100 handlers.
    let decode = match &route.from_json {
        Some(from_json) => quote! {
            if #private::is_json(&__melange_ctx) {
                match (#from_json)(__melange_ctx.content()) {
                    #private::Result::Ok(message) => message,
                    #private::Result::Err(error) => {
                        return #private::Result::Err(#private::json_error(&__melange_ctx, error));
                    }
                }
            } else {
                #decode
            }
        },
        None => decode,
    };
    let method = &handler.ident;
    let handler_name = format!("{consumer}::{method}");
    // Spanned at the context's type: a mismatched one is reported there.
    let (context_ctx, context) = handler
        .context
        .as_ref()
        .map(|ty| {
            (
                rebind_ctx(ty.span()),
                quote_spanned!(ty.span()=> , __melange_ctx),
            )
        })
        .unzip();
    // Spanned at the return type: an unsupported one is reported there. The outcome is declared
    // with the same span, so with the same hygiene (see `rebind_ctx`).
    let outcome = Ident::new("__melange_outcome", handler.output);
    let result = quote_spanned! {handler.output=>
        ::melange::__private::handler_result(#handler_name, #outcome)
    };
    quote! {
        let __melange_message = #decode;
        #context_ctx
        let #outcome = Self::#method(self, __melange_message #context).await;
        return #result;
    }
}

/// Whether a type refers to `Self`, which constants outside the impl cannot name.
fn mentions_self(ty: &Type) -> bool {
    fn walk(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => ident == "Self",
            proc_macro2::TokenTree::Group(group) => walk(group.stream()),
            _ => false,
        })
    }
    walk(ty.to_token_stream())
}

/// The panic message of the compile-time check that no two handlers share a manifest.
fn duplicate_message(consumer: &Consumer) -> String {
    let handlers: Vec<String> = consumer
        .handlers
        .iter()
        .map(|handler| {
            let bound = match &handler.binding {
                Binding::Manifest(manifest) => format!("manifest {:?}", manifest.value()),
                _ => format!("`{}::MANIFEST`", handler.message.to_token_stream()),
            };
            let cfg = if handler.cfg.is_always() {
                String::new()
            } else {
                format!(", under `#[cfg({})]`", handler.cfg.predicate())
            };
            format!("`{}` ({bound}{cfg})", handler.ident)
        })
        .collect();
    format!(
        "two handlers of `{}` are bound to the same manifest, among {}; a consumer has one \
         handler per manifest: give the message types distinct manifests \
         (`#[melange(manifest = \"...\")]`) or merge the handlers",
        consumer.name,
        handlers.join(", ")
    )
}
