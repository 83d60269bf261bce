//! Reading string literals out of attribute values.

use syn::{Expr, ExprLit, Lit, LitStr};

/// The string literal `expr` is, looking through the invisible groups `macro_rules!` wraps
/// around a `$value:literal` or `$value:expr` it passes on (so a derive inside a user's macro
/// accepts `manifest = $manifest`). `None` when it is not one.
pub(crate) fn string_literal(expr: &Expr) -> Option<&LitStr> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Some(lit),
        Expr::Group(group) => string_literal(&group.expr),
        _ => None,
    }
}
