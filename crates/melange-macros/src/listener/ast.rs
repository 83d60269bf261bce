//! What `#[listener]` reads: the impl block, and the `#[listener(...)]` options of its methods.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, Ident, ImplItem, Item, ItemImpl, LitStr, Meta, Signature, Token};

use crate::errors::Errors;
use crate::literal::string_literal;

/// An inherent impl block under `#[listener]`.
pub(crate) struct Listener {
    /// The block as the user wrote it, minus the `#[listener(...)]` method attributes.
    pub(crate) item: ItemImpl,
    /// Its methods, with their options.
    pub(crate) methods: Vec<Method>,
}

/// A method of the block.
pub(crate) struct Method {
    /// Its signature.
    pub(crate) sig: Signature,
    /// Its `#[listener(...)]` options.
    pub(crate) options: MethodOptions,
    /// The configuration it is compiled under.
    pub(crate) cfg: Cfg,
}

/// The `#[cfg(...)]` predicates a method is compiled under, all of which must hold; none when
/// it is always compiled.
///
/// `#[listener]` sees the methods before `cfg` is evaluated, and the method keeps its
/// attributes, so everything generated that names the method is put under the same predicates.
#[derive(Clone, Default)]
pub(crate) struct Cfg(Vec<TokenStream>);

impl Cfg {
    /// Reads the `#[cfg(...)]` attributes, and those written as `#[cfg_attr(p, cfg(q))]`.
    fn read(attrs: &[Attribute]) -> Self {
        Self(
            attrs
                .iter()
                .filter_map(|attr| predicate(&attr.meta))
                .collect(),
        )
    }

    /// Whether there is no predicate: always compiled.
    pub(crate) fn is_always(&self) -> bool {
        self.0.is_empty()
    }

    /// One predicate for all of them: `all()` when always compiled.
    pub(crate) fn predicate(&self) -> TokenStream {
        match self.0.as_slice() {
            [one] => one.clone(),
            all => quote!(all(#(#all),*)),
        }
    }

    /// The `#[cfg(...)]` attribute to put on what the method's configuration governs; nothing
    /// when it is always compiled.
    pub(crate) fn attr(&self) -> TokenStream {
        if self.is_always() {
            return TokenStream::new();
        }
        let predicate = self.predicate();
        quote!(#[cfg(#predicate)])
    }

    /// The configuration under which both hold.
    pub(crate) fn and(&self, other: &Self) -> Self {
        Self(self.0.iter().chain(&other.0).cloned().collect())
    }

    /// The predicates as written, to compare two configurations textually.
    pub(crate) fn key(&self) -> String {
        self.predicate().to_string()
    }
}

/// The predicate under which an attribute keeps its item: `p` for `cfg(p)`,
/// `any(not(p), q)` for `cfg_attr(p, cfg(q))`; `None` for attributes that never remove it.
/// A malformed `cfg_attr` is left to the compiler to report.
fn predicate(meta: &Meta) -> Option<TokenStream> {
    let Meta::List(list) = meta else {
        return None;
    };
    if list.path.is_ident("cfg") {
        return Some(list.tokens.clone());
    }
    if !list.path.is_ident("cfg_attr") {
        return None;
    }
    let metas = list
        .parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
        .ok()?;
    let mut metas = metas.iter();
    let condition = metas.next()?;
    let inner: Vec<TokenStream> = metas.filter_map(predicate).collect();
    match inner.as_slice() {
        [] => None,
        [one] => Some(quote!(any(not(#condition), #one))),
        all => Some(quote!(any(not(#condition), all(#(#all),*)))),
    }
}

/// The options of `#[listener(...)]` on a method.
#[derive(Default)]
pub(crate) struct MethodOptions {
    /// `manifest = "..."`: handles this manifest instead of the parameter type's.
    pub(crate) manifest: Option<LitStr>,
    /// `fallback`: handles everything no other handler takes.
    pub(crate) fallback: Option<Ident>,
    /// `skip`: not a handler.
    pub(crate) skip: Option<Ident>,
}

const TOP_LEVEL_ARGS: &str = "`#[listener]` takes no arguments; options go on the handler \
     methods: `#[listener(manifest = \"...\")]`, `#[listener(fallback)]` or `#[listener(skip)]`";

const METHOD_OPTIONS: &str =
    "expected `manifest = \"...\"`, `fallback` or `skip`, as in `#[listener(manifest = \"json\")]`";

/// Reports arguments given to `#[listener]` itself.
pub(crate) fn check_args(args: TokenStream, errors: &mut Errors) {
    if !args.is_empty() {
        errors.spanned(args, TOP_LEVEL_ARGS);
    }
}

impl Listener {
    /// Reads the impl block; `None` (with an error) when `item` is something else.
    pub(crate) fn parse(item: TokenStream, errors: &mut Errors) -> Option<Self> {
        let mut item = match syn::parse2::<Item>(item) {
            Ok(Item::Impl(item)) => item,
            Ok(other) => {
                errors.spanned(
                    item_head(&other),
                    "`#[listener]` goes on an inherent impl block of handler methods: \
                     `#[listener] impl MyConsumer { async fn on_event(&self, event: Event) {} }`",
                );
                return None;
            }
            Err(error) => {
                errors.push(error);
                return None;
            }
        };
        if let Some((_, trait_path, for_token)) = &item.trait_ {
            errors.spanned(
                quote::quote!(#trait_path #for_token),
                "`#[listener]` goes on an inherent impl block (`impl MyConsumer { ... }`), not on \
                 a trait impl; it writes the `Consumer` impl itself",
            );
        }
        if let Some(unsafety) = &item.unsafety {
            errors.spanned(unsafety, "a listener impl block cannot be `unsafe`");
        }
        let mut methods = Vec::new();
        for impl_item in &mut item.items {
            if let ImplItem::Fn(method) = impl_item {
                let options = take_options(&mut method.attrs, errors);
                methods.push(Method {
                    sig: method.sig.clone(),
                    options,
                    cfg: Cfg::read(&method.attrs),
                });
            }
        }
        Some(Self { item, methods })
    }
}

/// The tokens to point at for an item that is not an impl block: its keyword and name.
fn item_head(item: &Item) -> TokenStream {
    match item {
        Item::Fn(f) => f.sig.fn_token.to_token_stream(),
        Item::Struct(s) => {
            let mut tokens = s.struct_token.to_token_stream();
            s.ident.to_tokens(&mut tokens);
            tokens
        }
        Item::Enum(e) => {
            let mut tokens = e.enum_token.to_token_stream();
            e.ident.to_tokens(&mut tokens);
            tokens
        }
        Item::Trait(t) => {
            let mut tokens = t.trait_token.to_token_stream();
            t.ident.to_tokens(&mut tokens);
            tokens
        }
        Item::Mod(m) => {
            let mut tokens = m.mod_token.to_token_stream();
            m.ident.to_tokens(&mut tokens);
            tokens
        }
        other => other.to_token_stream(),
    }
}

/// Whether `attr` is `#[listener]` or `#[...::listener]`.
fn is_listener(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "listener")
}

/// Removes the `#[listener(...)]` attributes of a method and reads their options.
fn take_options(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> MethodOptions {
    let mut options = MethodOptions::default();
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        if !is_listener(&attr) {
            kept.push(attr);
            continue;
        }
        if let syn::Meta::Path(_) = attr.meta {
            // A bare `#[listener]` on a method adds nothing: every method is a handler.
            continue;
        }
        if let Err(error) = attr.parse_nested_meta(|meta| {
            let key = meta.path.to_token_stream().to_string().replace(' ', "");
            let ident = meta.path.get_ident().cloned();
            match (key.as_str(), ident) {
                ("manifest", _) => {
                    let value: Expr = meta.value()?.parse()?;
                    match string_literal(&value) {
                        Some(lit) => {
                            if options.manifest.is_some() {
                                errors.spanned(&meta.path, "`manifest` is given twice; keep one");
                            } else {
                                options.manifest = Some(lit.clone());
                            }
                        }
                        None => errors.spanned(
                            &value,
                            "the manifest must be a string literal: `manifest = \"json\"`",
                        ),
                    }
                }
                ("fallback", Some(ident)) => {
                    if options.fallback.is_some() {
                        errors.spanned(&ident, "`fallback` is given twice; keep one");
                    } else {
                        options.fallback = Some(ident);
                    }
                }
                ("skip", Some(ident)) => {
                    if options.skip.is_some() {
                        errors.spanned(&ident, "`skip` is given twice; keep one");
                    } else {
                        options.skip = Some(ident);
                    }
                }
                _ => {
                    return Err(meta.error(format_args!(
                        "unknown listener option `{key}`; {METHOD_OPTIONS}"
                    )));
                }
            }
            Ok(())
        }) {
            errors.push(error);
        }
    }
    *attrs = kept;
    options
}
