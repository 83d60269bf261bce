//! `#[listener]`: parse the impl block, check the handlers, write the `Consumer` impl.

mod ast;
mod expand;
mod valid;

use proc_macro2::TokenStream;
use quote::quote;

use crate::errors::Errors;

/// Expands `#[listener]` on `item` with attribute arguments `args`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    ast::check_args(args, &mut errors);
    let Some(listener) = ast::Listener::parse(item.clone(), &mut errors) else {
        // Not an inherent impl block: give the item back untouched, with the errors.
        let compile_errors = errors.into_compile_errors();
        return quote! {
            #item
            #compile_errors
        };
    };
    let consumer = valid::check(&listener, &mut errors);
    let item = &listener.item;
    match errors.into_compile_errors() {
        None => {
            let consumer_impl = expand::consumer_impl(&listener, &consumer);
            quote! {
                #item
                #consumer_impl
            }
        }
        Some(compile_errors) => {
            // A stand-in `Consumer` impl keeps uses of the type as a consumer quiet, so the
            // errors above are the only ones.
            let stand_in = expand::stand_in_impl(&listener, &consumer);
            quote! {
                #item
                #stand_in
                #compile_errors
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::expand;

    fn expand_to_file(item: proc_macro2::TokenStream) -> syn::File {
        match syn::parse2(expand(proc_macro2::TokenStream::new(), item)) {
            Ok(file) => file,
            Err(error) => panic!("the expansion does not parse: {error}"),
        }
    }

    #[test]
    fn keeps_the_impl_block_without_method_attributes() {
        let file = expand_to_file(quote! {
            impl Orders {
                async fn on_created(&self, event: OrderCreated) {}
                #[listener(manifest = "json")]
                async fn on_json(&self, payload: Value, ctx: MessageContext<'_>) {}
                #[listener(skip)]
                #[inline]
                fn helper(&self) {}
            }
        });
        let text = quote!(#file).to_string();
        assert!(!text.contains("listener"), "{text}");
        assert!(text.contains("# [inline] fn helper"), "{text}");
        assert!(text.contains("\"Orders::on_json\""), "{text}");
        assert!(
            text.contains(":: melange :: __private :: Consumer for Orders"),
            "{text}"
        );
        // The message type is named in one route constant.
        assert_eq!(
            text.matches("Route :: < OrderCreated >").count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn cfg_gated_methods_put_their_cfg_on_what_names_them() {
        let file = expand_to_file(quote! {
            impl Orders {
                async fn on_created(&self, event: OrderCreated) {}
                #[cfg(feature = "refunds")]
                async fn on_refund(&self, event: Refund) {}
                #[cfg_attr(test, cfg(unix))]
                #[listener(manifest = "json")]
                async fn on_json(&self, payload: Value) {}
            }
        });
        let text = quote!(#file).to_string();
        let refund = "# [cfg (feature = \"refunds\")]";
        assert!(
            text.contains(&format!("{refund} const __MELANGE_ROUTE_1")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{refund} __MELANGE_ROUTE_1 . manifest")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{refund} if __melange_manifest ==")),
            "{text}"
        );
        let json = "# [cfg (any (not (test) , unix))]";
        assert!(
            text.contains(&format!("{json} if __melange_manifest == \"json\"")),
            "{text}"
        );
        // The user's method keeps its own attributes.
        assert!(
            text.contains("# [cfg_attr (test , cfg (unix))] async fn on_json"),
            "{text}"
        );
    }

    #[test]
    fn message_types_naming_self_are_checked_inside_an_impl() {
        let file = expand_to_file(quote! {
            impl Orders {
                async fn on_created(&self, event: <Self as Schema>::Created) {}
                async fn on_refund(&self, event: Refund) {}
            }
        });
        let text = quote!(#file).to_string();
        assert!(
            text.contains("impl __MelangeDistinctManifests for Orders"),
            "{text}"
        );
        assert!(
            text.contains("const _ : () = < Orders as __MelangeDistinctManifests > :: CHECK ;"),
            "{text}"
        );
    }

    #[test]
    fn on_error_keeps_the_item_and_a_stand_in() {
        let file = expand_to_file(quote! {
            impl Orders {
                fn on_created(&self, event: OrderCreated) {}
            }
        });
        let text = quote!(#file).to_string();
        assert!(text.contains("fn on_created"), "{text}");
        assert!(text.contains("compile_error"), "{text}");
        assert!(text.contains("Consumer for Orders"), "{text}");
    }

    #[test]
    fn not_an_impl_block_is_given_back() {
        let file = expand_to_file(quote! { struct Orders; });
        let text = quote!(#file).to_string();
        assert!(text.starts_with("struct Orders ;"), "{text}");
        assert!(text.contains("compile_error"), "{text}");
    }
}
