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
