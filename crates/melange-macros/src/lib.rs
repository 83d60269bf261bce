//! Procedural macros of melange. Use them through the `melange` crate.
use proc_macro::TokenStream;

/// Derives `melange::Message` (being written).
#[proc_macro_derive(Message, attributes(melange))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let _ = input;
    TokenStream::new()
}

/// Turns an impl block of handlers into a consumer (being written).
#[proc_macro_attribute]
pub fn listener(args: TokenStream, item: TokenStream) -> TokenStream {
    let _ = args;
    item
}
