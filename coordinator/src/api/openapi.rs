//! The API's description, served at `/openapi.json`. Its paths come from
//! the handlers' `#[utoipa::path]` attributes through the router that
//! serves them ([`utoipa_axum`]), its schemas from the types the handlers
//! take and answer, so a route cannot be served undocumented nor a field
//! change without the description changing with it.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Spec, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// The description's fixed part: what the handlers do not say.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "nodal coordinator",
        description = "Runs of a model over submitted archives, their result files, the \
                       published models and archives, and the object proxy sites submit \
                       through. Every endpoint but /healthz, /readyz, /metrics and \
                       /openapi.json takes `Authorization: Bearer <token>`; what a token's \
                       role (site, analyst, operator) may do is in docs/security.md. Errors \
                       are JSON `{\"error\", \"kind\"}`. See docs/api.md."
    ),
    modifiers(&BearerTokens),
    security(("bearer" = [])),
    tags(
        (name = "service", description = "Liveness, readiness and metrics"),
        (name = "runs", description = "Create, follow and cancel runs; their result files"),
        (name = "catalog", description = "Published models and submitted archives"),
        (name = "store", description = "The object proxy (`nodal submit --store http://…`)")
    )
)]
pub(super) struct ApiDoc;

/// Declares the `bearer` security scheme the API's tokens use.
struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, spec: &mut Spec) {
        let components = spec.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// An object's bytes, as `application/octet-stream`.
pub(super) struct ObjectBytes;

impl PartialSchema for ObjectBytes {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for ObjectBytes {}

/// The served description: axum's catch-all parameters (`{*key}`) written
/// as OpenAPI's plain ones (`{key}`).
pub(super) fn finish(mut spec: Spec) -> Spec {
    spec.paths.paths = std::mem::take(&mut spec.paths.paths)
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::description;
    use std::path::PathBuf;

    /// Every route the coordinator serves, by path.
    const ROUTES: [(&str, &[&str]); 12] = [
        ("/healthz", &["GET"]),
        ("/readyz", &["GET"]),
        ("/metrics", &["GET"]),
        ("/runs", &["GET", "POST"]),
        ("/runs/{id}", &["GET"]),
        ("/runs/{id}/cancel", &["POST"]),
        ("/runs/{id}/files/{name}", &["GET"]),
        ("/models", &["GET"]),
        ("/archives", &["GET"]),
        ("/archives/{id}", &["GET"]),
        ("/store", &["GET"]),
        ("/store/{key}", &["GET", "HEAD", "PUT", "DELETE"]),
    ];

    /// The endpoints that take no token.
    const OPEN: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

    #[test]
    fn catch_all_parameters_are_written_plain() {
        let mut spec = ApiDoc::openapi();
        spec.paths
            .paths
            .insert("/store/{*key}".into(), Default::default());
        let spec = finish(spec);
        assert!(spec.paths.paths.contains_key("/store/{key}"));
        assert!(!spec.paths.paths.keys().any(|p| p.contains('*')));
    }

    #[test]
    fn every_route_is_described_with_its_errors() {
        let spec = description();
        let mut got: Vec<&str> = spec.paths.paths.keys().map(String::as_str).collect();
        got.sort_unstable();
        let mut want: Vec<&str> = ROUTES.iter().map(|(p, _)| *p).collect();
        want.sort_unstable();
        assert_eq!(got, want);
        for (path, methods) in ROUTES {
            let item = &spec.paths.paths[path];
            for method in methods {
                let op = match *method {
                    "GET" => item.get.as_ref(),
                    "HEAD" => item.head.as_ref(),
                    "PUT" => item.put.as_ref(),
                    "POST" => item.post.as_ref(),
                    "DELETE" => item.delete.as_ref(),
                    _ => None,
                };
                let Some(op) = op else {
                    panic!("{method} {path} is not described");
                };
                let statuses: Vec<&str> =
                    op.responses.responses.keys().map(String::as_str).collect();
                assert!(
                    statuses.iter().any(|s| s.starts_with('2')),
                    "{method} {path}: no success answer in {statuses:?}"
                );
                assert_eq!(
                    !OPEN.contains(&path),
                    statuses.contains(&"401"),
                    "{method} {path}: 401 is declared exactly where a token is needed"
                );
                if path.contains('{') {
                    assert!(
                        statuses.contains(&"400"),
                        "{method} {path}: a bad path parameter is 400"
                    );
                }
            }
        }
    }

    /// docs/openapi.json is the served description, so that client writers
    /// can read it without a coordinator. Regenerate with
    /// `NODAL_UPDATE_DOCS=1 cargo test --release --workspace -p nodal-coordinator openapi`.
    #[test]
    fn docs_openapi_json_is_the_served_description() {
        let Ok(json) = description().to_pretty_json() else {
            panic!("the description does not serialise");
        };
        let generated = json + "\n";
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        if std::env::var_os("NODAL_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &generated).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is out of date: run NODAL_UPDATE_DOCS=1 cargo test --release --workspace -p nodal-coordinator openapi"
        );
    }
}
