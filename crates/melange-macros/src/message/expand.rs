//! The `impl Message` for a type.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{LitStr, parse_quote};

use super::ast::MessageInput;

/// `impl ::melange::__private::Message for T { const MANIFEST: &'static str = "..."; }`.
pub(crate) fn message_impl(message: &MessageInput<'_>) -> TokenStream {
    let ident = message.ident;
    let manifest = message
        .manifest
        .clone()
        .unwrap_or_else(|| match &message.python {
            // Python Melange's manifest is the class's `__qualname__`, not the Rust type's name.
            Some(class) => LitStr::new(python_qualname(&class.value()), class.span()),
            None => LitStr::new(&ident.to_string(), ident.span()),
        });
    let mut generics = message.generics.clone();
    if !generics.params.is_empty() {
        // The supertraits of `Message` must hold for every instance the impl covers.
        generics.make_where_clause().predicates.push(parse_quote! {
            Self: ::melange::__private::Serialize
                + ::melange::__private::DeserializeOwned
                + ::melange::__private::Send
                + ::melange::__private::Sync
                + 'static
        });
    }
    let (impl_generics, type_generics, where_clause) = generics.split_for_impl();
    let python = message.python.as_ref().map(|class| {
        quote! {
            #[automatically_derived]
            impl #impl_generics ::melange::__private::PythonClass for #ident #type_generics #where_clause {
                const PYTHON_CLASS: &'static str = #class;
            }
        }
    });
    quote! {
        #[automatically_derived]
        impl #impl_generics ::melange::__private::Message for #ident #type_generics #where_clause {
            const MANIFEST: &'static str = #manifest;
        }
        #python
    }
}

/// The `__qualname__` of a Python class named as `module.Class` or `module:Outer.Inner`.
fn python_qualname(class: &str) -> &str {
    match class.split_once(':') {
        Some((_, qualname)) => qualname,
        None => class.rsplit('.').next().unwrap_or(class),
    }
}
