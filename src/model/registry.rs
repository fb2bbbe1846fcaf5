//! The model registry (`synth_models`, `synth_model_parts`): versioned models, one active.
//!
//! Users read the registry directly; changes go through functions that check the caller's
//! rights and then write as the extension's owner, so the tables need no write grants.

use crate::fmgr::{error, spi_bool};
use crate::security::{self, as_owner};
use pgrx::JsonB;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;

/// Bytes per row of `synth_model_parts`.
const PART_BYTES: usize = 16 << 20;

/// `sql` with `@extschema@` replaced by the extension's schema, quoted (runtime SPI queries get
/// no substitution of their own, and search_path must not decide which tables are read).
pub fn q(sql: &str) -> String {
    sql.replace("@extschema@", &security::extension().schema)
}

/// A row of `synth_models`, without the weights.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelRow {
    pub id: i64,
    pub name: String,
    pub version: i32,
    pub encoder_version: String,
    pub generator_version: String,
    pub dims: i32,
}

fn row_from(query: &str, args: &[pgrx::datum::DatumWithOid]) -> Option<ModelRow> {
    security::pinned(|| {
        Spi::connect(|client| {
            let table = client.select(&q(query), Some(1), args).ok()?;
            let row = table.into_iter().next()?;
            Some(ModelRow {
                id: row.get::<i64>(1).ok()??,
                name: row.get::<String>(2).ok()??,
                version: row.get::<i32>(3).ok()??,
                encoder_version: row.get::<String>(4).ok()??,
                generator_version: row.get::<String>(5).ok()??,
                dims: row.get::<i32>(6).ok()??,
            })
        })
    })
}

const COLUMNS: &str = "id, name, version, encoder_version, generator_version, dims";

/// The model a function was asked for: the active one (None), `name` (its highest version),
/// `name:version`, or a numeric id.
pub fn resolve(model: Option<&str>) -> ModelRow {
    match model.map(str::trim) {
        None => row_from(
            &format!("SELECT {COLUMNS} FROM @extschema@.synth_models WHERE active"),
            &[],
        )
        .unwrap_or_else(|| {
            error(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "no model is active: train one with synth_train(images, pairs) or load one with \
                     synth_model_import(bytes), then synth_model_activate(id)",
            )
        }),
        Some(spec) => {
            let found = if let Ok(id) = spec.parse::<i64>() {
                row_from(
                    &format!(
                        "SELECT {COLUMNS} FROM @extschema@.synth_models WHERE id OPERATOR(pg_catalog.=) $1"
                    ),
                    &[id.into()],
                )
            } else if let Some((name, version)) = spec
                .rsplit_once(':')
                .and_then(|(n, v)| Some((n, v.parse::<i32>().ok()?)))
            {
                row_from(
                    &format!(
                        "SELECT {COLUMNS} FROM @extschema@.synth_models WHERE name OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.=) $2"
                    ),
                    &[name.into(), version.into()],
                )
            } else {
                row_from(
                    &format!(
                        "SELECT {COLUMNS} FROM @extschema@.synth_models WHERE name OPERATOR(pg_catalog.=) $1 ORDER BY version DESC"
                    ),
                    &[spec.into()],
                )
            };
            found.unwrap_or_else(|| {
                error(
                    PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                    format!("model \"{spec}\" does not exist"),
                )
            })
        }
    }
}

/// An encoder version (`enc-<16 hex digits>`) as the number an index stores in its meta page.
pub fn encoder_number(version: &str) -> u64 {
    version
        .strip_prefix("enc-")
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or_else(|| {
            version.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
            })
        })
}

/// The active model's encoder version as a number (55000 when no model is active).
pub fn active_encoder_number() -> u64 {
    encoder_number(&resolve(None).encoder_version)
}

/// The checkpoint bytes of model `id`.
pub fn model_bytes(id: i64) -> Vec<u8> {
    let parts: Vec<Vec<u8>> = security::pinned(|| {
        Spi::connect(|client| {
            client
            .select(
                &q("SELECT bytes FROM @extschema@.synth_model_parts WHERE model OPERATOR(pg_catalog.=) $1 ORDER BY part"),
                None,
                &[id.into()],
            )
            .map(|t| t.into_iter().filter_map(|r| r.get::<Vec<u8>>(1).ok().flatten()).collect())
            .unwrap_or_default()
        })
    });
    if parts.is_empty() {
        panic!("data corruption: model {id} has no weights in synth_model_parts");
    }
    parts.concat()
}

/// What storing a model does about the active one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Leave the active model alone (the first model ever is activated when a model manager
    /// stores it).
    No,
    /// Make it the active one, refused when its encoder differs from the active model's.
    Yes,
    /// Make it the active one even over another encoder (stored embeddings and indexes must be
    /// re-encoded and rebuilt).
    Force,
}

impl Activation {
    /// From the `activate` and `force` arguments of the SQL functions.
    pub fn of(activate: bool, force: bool) -> Activation {
        match (activate, force) {
            (false, _) => Activation::No,
            (true, false) => Activation::Yes,
            (true, true) => Activation::Force,
        }
    }
}

/// A model stored in the registry.
pub struct Stored {
    pub id: i64,
    /// Why an activation that was asked for, or that the first model would get, did not happen.
    pub note: Option<String>,
}

/// Advisory lock key ("SYNM") under which new versions of one model name are numbered, so two
/// stores under the same name never collide.
const NAME_LOCK_KEY: i32 = 0x5359_4e4d;

/// Stores `bytes` (a checkpoint that `synthsearch_model::Model::from_bytes` accepts) as the next
/// version of `name`. Writes as the extension's owner; the caller's rights were checked.
pub fn store_model(
    name: &str,
    bytes: &[u8],
    metrics: &serde_json::Value,
    job: Option<i64>,
    activation: Activation,
) -> Stored {
    let model = load_checkpoint(bytes);
    store_loaded(name, &model, bytes, metrics, job, activation)
}

/// Checkpoint bytes as a model on the CPU, or the ERROR a caller's bad bytes are.
fn load_checkpoint(bytes: &[u8]) -> synthsearch_model::Model {
    let device = tch::Device::Cpu;
    synthsearch_model::Model::from_bytes(bytes, device)
        .unwrap_or_else(|e| crate::errors::checkpoint(&e, "invalid model", true).raise())
}

/// As [`store_model`], for a model already loaded. Activation follows the rules of
/// [`Activation`]: only a model manager activates (checked here, as the current user, before the
/// switch to the owner), and an encoder change needs `Force`. A refused activation is not an
/// ERROR: the model stays stored and `note` says why (a training job must not lose its model).
pub(crate) fn store_loaded(
    name: &str,
    model: &synthsearch_model::Model,
    bytes: &[u8],
    metrics: &serde_json::Value,
    job: Option<i64>,
    activation: Activation,
) -> Stored {
    let versions = model
        .encoder_version()
        .and_then(|e| Ok((e, model.generator_version()?)))
        .unwrap_or_else(|e| {
            error(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("model version: {e}"),
            )
        });
    let config = serde_json::json!({
        "encoder": model.encoder_config(),
        "generator": model.generator_config(),
        "gan_steps": model.gan_steps(),
    });
    check_model_name(name);
    let manager = security::is_model_manager();
    // The name's versions are numbered, and its owner checked, under one lock held to the end of
    // the transaction: two stores under one name never collide, and none slips in between.
    security::pinned(|| {
        Spi::run_with_args(
            "SELECT pg_catalog.pg_advisory_xact_lock($1, pg_catalog.hashtext($2))",
            &[NAME_LOCK_KEY.into(), name.into()],
        )
    })
    .unwrap_or_else(|e| {
        error(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("storing the model failed: {e}"),
        )
    });
    require_name_owner(name, manager);
    // Safety: the current user's name, as the caller (before the switch to the owner).
    let caller = unsafe {
        std::ffi::CStr::from_ptr(pg_sys::GetUserNameFromId(pg_sys::GetUserId(), false))
            .to_string_lossy()
            .into_owned()
    };
    as_owner(|| {
        let id = Spi::get_one_with_args::<i64>(
            &q("INSERT INTO @extschema@.synth_models \
               (name, version, encoder_version, generator_version, image_size, dims, config, metrics, size_bytes, job, created_by) \
             SELECT $1, coalesce(pg_catalog.max(version), 0) OPERATOR(pg_catalog.+) 1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
             FROM @extschema@.synth_models WHERE name OPERATOR(pg_catalog.=) $1 RETURNING id"),
            &[
                name.into(),
                versions.0.into(),
                versions.1.into(),
                (model.image_size() as i32).into(),
                (model.embed_dim() as i32).into(),
                JsonB(config).into(),
                JsonB(metrics.clone()).into(),
                (bytes.len() as i64).into(),
                job.into(),
                caller.as_str().into(),
            ],
        )
        .unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("storing the model failed: {e}")))
        .expect("INSERT ... RETURNING returns a row");
        for (part, chunk) in bytes.chunks(PART_BYTES).enumerate() {
            Spi::run_with_args(
                &q("INSERT INTO @extschema@.synth_model_parts (model, part, bytes) VALUES ($1, $2, $3)"),
                &[id.into(), (part as i32).into(), chunk.into()],
            )
            .unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("storing the model failed: {e}")));
        }
        let none_active = spi_bool(
            &q("SELECT NOT EXISTS (SELECT FROM @extschema@.synth_models WHERE active)"),
            &[],
        );
        let wanted = activation != Activation::No || none_active;
        let note = if !wanted {
            None
        } else if !manager {
            Some(format!(
                "model {id} was stored but not activated: activating a model needs a model manager \
                 (superuser, the extension's owner or a member of {}); one can run synth_model_activate({id})",
                security::ADMIN_ROLE
            ))
        } else if activation != Activation::Force {
            encoder_conflict(id)
        } else {
            None
        };
        if wanted && note.is_none() {
            set_active(id);
        }
        Stored { id, note }
    })
}

/// The role that owns a model name: the one that stored its earliest version still held. None
/// for a name not in the registry.
pub fn name_owner(name: &str) -> Option<String> {
    security::pinned(|| {
        Spi::connect(|client| {
            let table = client.select(
                &q(
                    "SELECT created_by::pg_catalog.text FROM @extschema@.synth_models \
                    WHERE name OPERATOR(pg_catalog.=) $1 ORDER BY version LIMIT 1",
                ),
                Some(1),
                &[name.into()],
            )?;
            if table.is_empty() {
                return Ok(None);
            }
            table.first().get_one::<String>()
        })
        .unwrap_or_else(|e| {
            error(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("reading the owner of model name \"{name}\" failed: {e}"),
            )
        })
    })
}

/// Why `name` cannot name a model: empty, padded with spaces, or read by the functions that take
/// a model (`resolve`) as something else (an id, `name:version`), so that a user's spec would
/// reach another name's models.
pub fn invalid_model_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a model name must not be empty".into());
    }
    if name.trim() != name {
        return Some(format!(
            "model name \"{name}\" begins or ends with white space"
        ));
    }
    if name.parse::<i64>().is_ok() {
        return Some(format!("model name \"{name}\" would read as a model id"));
    }
    if let Some((base, v)) = name.rsplit_once(':')
        && v.parse::<i32>().is_ok()
    {
        return Some(format!(
            "model name \"{name}\" would read as version {v} of model \"{base}\""
        ));
    }
    None
}

/// 22023 when `name` cannot name a model ([`invalid_model_name`]).
pub fn check_model_name(name: &str) {
    if let Some(why) = invalid_model_name(name) {
        error(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, why);
    }
}

/// Raises 42501 unless the current user may add a version under `name`: a new name, a name whose
/// owner role the current user is a member of, or any name for a model manager (`manager`). A
/// name then never resolves to another role's weights by that role's hand.
pub fn require_name_owner(name: &str, manager: bool) {
    if manager {
        return;
    }
    let Some(owner) = name_owner(name) else {
        return;
    };
    let member = spi_bool(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_roles r \
                        WHERE r.rolname OPERATOR(pg_catalog.=) $1::pg_catalog.name \
                          AND pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER'))",
        &[owner.as_str().into()],
    );
    if !member {
        crate::fmgr::error_with(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied to store a model named \"{name}\": the name belongs to role {owner}"),
            None,
            Some("Only that role (and its members) and model managers add versions of a name; choose another name.".into()),
        );
    }
}

/// Why model `id` may not replace the active model without a force: its encoder version differs,
/// and stored embeddings and indexes belong to the active encoder. None when it may.
fn encoder_conflict(id: i64) -> Option<String> {
    let target = resolve(Some(&id.to_string()));
    let active = row_from(
        &format!("SELECT {COLUMNS} FROM @extschema@.synth_models WHERE active"),
        &[],
    )?;
    (active.encoder_version != target.encoder_version && active.id != target.id).then(|| {
        format!(
            "model {} has encoder version {}, the active model {} has {}: embeddings and indexes \
             made with the active encoder would no longer match; re-encode them, then activate with force => true",
            target.id, target.encoder_version, active.id, active.encoder_version
        )
    })
}

/// Makes model `id` the active one (no checks: see [`encoder_conflict`]). As the owner.
fn set_active(id: i64) {
    Spi::run(&q(
        "UPDATE @extschema@.synth_models SET active = false WHERE active",
    ))
    .expect("deactivate");
    Spi::run_with_args(
        &q("UPDATE @extschema@.synth_models SET active = true WHERE id OPERATOR(pg_catalog.=) $1"),
        &[id.into()],
    )
    .expect("activate");
}

/// `synth_model_activate(id, force)`: makes a model the active one.
#[pg_extern(volatile, parallel_unsafe)]
fn synth_model_activate(id: i64, force: default!(bool, false)) -> bool {
    security::require_model_manager("activate a model");
    let id = resolve(Some(&id.to_string())).id;
    if !force && let Some(message) = encoder_conflict(id) {
        error(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            message,
        );
    }
    as_owner(|| set_active(id));
    true
}

/// `synth_model_drop(id)`: removes a model that is not active.
#[pg_extern(volatile, parallel_unsafe)]
fn synth_model_drop(id: i64) -> bool {
    security::require_model_manager("drop a model");
    let row = resolve(Some(&id.to_string()));
    let active = spi_bool(
        &q("SELECT active FROM @extschema@.synth_models WHERE id OPERATOR(pg_catalog.=) $1"),
        &[row.id.into()],
    );
    if active {
        error(
            PgSqlErrorCode::ERRCODE_OBJECT_IN_USE,
            format!("model {id} is active: activate another model before dropping it"),
        );
    }
    as_owner(|| {
        Spi::run_with_args(
            &q("DELETE FROM @extschema@.synth_models WHERE id OPERATOR(pg_catalog.=) $1"),
            &[id.into()],
        )
        .expect("delete")
    });
    true
}

/// `synth_model_export(model)`: the model's checkpoint bytes, to move it to another database.
#[pg_extern(stable, parallel_safe)]
fn synth_model_export(model: default!(Option<&str>, "NULL")) -> Vec<u8> {
    security::require_model_manager("export a model");
    let id = resolve(model).id;
    as_owner(|| model_bytes(id))
}

/// `synth_model_import(bytes, name, activate, force)`: stores exported checkpoint bytes as a new
/// version; with `activate` it becomes the active model (55000 if its encoder differs from the
/// active one's, unless `force`).
#[pg_extern(volatile, parallel_unsafe)]
fn synth_model_import(
    bytes: &[u8],
    name: default!(&str, "'imported'"),
    activate: default!(bool, false),
    force: default!(bool, false),
) -> i64 {
    security::require_model_manager("import a model");
    if bytes.is_empty() {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            "model bytes are empty",
        );
    }
    let activation = Activation::of(activate, force);
    // A TorchScript module is code (loading it already runs its __setstate__): it runs in every
    // backend and model server that uses the model, with the rights of the operating system user
    // the server runs as. Only a superuser, who has those rights already, may bring one in, and
    // the header says which encoder it is before anything is loaded.
    let (header, _) = synthsearch_model::checkpoint::read(bytes)
        .unwrap_or_else(|e| crate::errors::checkpoint(&e, "invalid model", true).raise());
    // Safety: reads the current user's role flags.
    if matches!(
        header.encoder.config.kind,
        synthsearch_model::EncoderKind::TorchScript { .. }
    ) && !unsafe { pg_sys::superuser() }
    {
        crate::fmgr::error_with(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "permission denied to import a model with a TorchScript encoder",
            Some("A TorchScript module is code that runs in every server process with the rights of the server's operating system user, so importing one needs superuser.".into()),
            None,
        );
    }
    let model = load_checkpoint(bytes);
    let stored = store_loaded(
        name,
        &model,
        bytes,
        &serde_json::json!({}),
        None,
        activation,
    );
    if activate && let Some(note) = stored.note {
        error(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            note,
        );
    }
    stored.id
}

/// `synth_model_create(name, config, seed)`: a model with fresh weights from a configuration
/// (`{"encoder": {...}, "generator": {...}}`, each merged over the defaults), for a training
/// run to start from or for tests of the plumbing. Its embeddings mean nothing until trained.
#[pg_extern(volatile, parallel_unsafe)]
fn synth_model_create(name: &str, config: default!(JsonB, "'{}'"), seed: default!(i64, 0)) -> i64 {
    security::require_model_manager("create a model");
    let init = model_init(&config.0);
    tch::manual_seed(seed);
    let model = synthsearch_model::Model::new(init, tch::Device::Cpu).unwrap_or_else(|e| {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid model configuration: {e}"),
        )
    });
    let bytes = model.to_bytes().unwrap_or_else(|e| {
        error(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("saving the model failed: {e}"),
        )
    });
    store_loaded(
        name,
        &model,
        &bytes,
        &serde_json::json!({"trained": false}),
        None,
        Activation::No,
    )
    .id
}

/// Merges `over` into `base` (objects key by key, anything else replaced).
pub(crate) fn merge(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A model configuration from JSON merged over the defaults.
pub fn model_init(config: &serde_json::Value) -> synthsearch_model::ModelInit {
    let bad = |e: String| -> ! {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid model configuration: {e}"),
        )
    };
    if !config.is_object() {
        bad("it must be a JSON object".into());
    }
    for key in config.as_object().into_iter().flat_map(|o| o.keys()) {
        if key != "encoder" && key != "generator" {
            bad(format!(
                "unknown key \"{key}\" (expected \"encoder\" and \"generator\")"
            ));
        }
    }
    let mut encoder = serde_json::to_value(synthsearch_model::EncoderConfig::default())
        .expect("config serializes");
    let mut generator = serde_json::to_value(synthsearch_model::GeneratorConfig::default())
        .expect("config serializes");
    if let Some(e) = config.get("encoder") {
        merge(&mut encoder, e);
    }
    if let Some(g) = config.get("generator") {
        merge(&mut generator, g);
    }
    synthsearch_model::ModelInit {
        encoder: serde_json::from_value(encoder).unwrap_or_else(|e| bad(e.to_string())),
        generator: serde_json::from_value(generator).unwrap_or_else(|e| bad(e.to_string())),
        word_vectors: None,
        script: None,
    }
}
