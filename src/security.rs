//! Privilege boundaries, in one room.
//!
//! The extension acts as a role other than the caller in three places: registry and job writes
//! as the extension's owner (`as_owner`), the training worker reading a job's tables as the job's
//! role (`as_role`), and the launcher's resume workers, which connect as the bootstrap superuser.
//! Each boundary has the shape of PostgreSQL's maintenance commands (VACUUM, REINDEX, REFRESH
//! MATERIALIZED VIEW) after CVE-2018-1058: the user id is switched with
//! `SECURITY_RESTRICTED_OPERATION`, a GUC nest level pins `search_path` to `pg_catalog, pg_temp`,
//! and both are undone in one place. Every SQL text run inside names its tables, functions and
//! operators by schema as well, so that neither a hostile `search_path` (the session's, the
//! database's or a role's default) nor an object placed ahead of `pg_catalog` can run on the far
//! side of a boundary.
//!
//! The caller's own queries (the registry reads behind `synth_encode`, index builds reading the
//! active encoder) run `pinned` too: they then mean what they say whatever the caller's path.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;

use crate::fmgr::{error, require_privilege};

/// The search path code on the far side of a boundary runs with (PostgreSQL 17's
/// `GUC_SAFE_SEARCH_PATH`). `pg_temp` last: a temporary object never shadows a catalog one, and
/// functions and operators are never looked up in `pg_temp` at all.
pub const SAFE_SEARCH_PATH: &CStr = c"pg_catalog, pg_temp";

/// The role that may manage models besides superusers and members of the extension's owner.
/// The extension script creates it (NOLOGIN) when it does not exist; a DBA grants it.
pub const ADMIN_ROLE: &str = "synthsearch_admin";

/// Runs `f` with `search_path` pinned to [`SAFE_SEARCH_PATH`] in a GUC nest level of its own.
///
/// On an ERROR the (sub)transaction's abort pops the nest level, as it does for a function with
/// a `SET` clause.
pub fn pinned<R>(f: impl FnOnce() -> R) -> R {
    // Safety: NewGUCNestLevel and set_config_option with GUC_ACTION_SAVE are what
    // fmgr_security_definer and RestrictSearchPath() do; SAVE is allowed in parallel mode, and
    // the value is a valid list, so the call cannot fail.
    let level = unsafe {
        let level = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            SAFE_SEARCH_PATH.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        level
    };
    let r = f();
    // Safety: pops exactly the level pushed above (f's own levels are popped by f).
    unsafe { pg_sys::AtEOXact_GUC(true, level) };
    r
}

/// Restores the saved user id and security context when dropped, on return and on unwind alike,
/// so that no Rust code that catches an ERROR can go on with raised privileges.
struct Identity {
    user: pg_sys::Oid,
    context: i32,
}

impl Drop for Identity {
    fn drop(&mut self) {
        // Safety: a plain write of the backend's current user id and security context.
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.context) };
    }
}

/// Runs `f` as `role`, under `SECURITY_RESTRICTED_OPERATION`, with a pinned search path.
pub fn as_role<R>(role: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    let (mut user, mut context) = (pg_sys::Oid::INVALID, 0);
    // Safety: plain reads and writes of the backend's current user id and security context.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(
            role,
            context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
    }
    let _restore = Identity { user, context };
    pinned(f)
}

/// Runs `f` as the extension's owner (writes to the registry and job tables on behalf of a
/// caller whose rights were checked before).
pub fn as_owner<R>(f: impl FnOnce() -> R) -> R {
    as_role(extension().owner, f)
}

/// The installed extension: its schema (quoted for SQL) and its owner.
pub struct Extension {
    pub schema: String,
    pub owner: pg_sys::Oid,
}

/// The extension's schema and owner (42704 when it is not installed in this database).
pub fn extension() -> Extension {
    // A read-only SELECT: pgrx's Spi::get_* helpers run as updates, which assign a transaction
    // id (an error in a parallel query, and an XID burnt by every read-only query otherwise).
    let found = pinned(|| {
        pgrx::Spi::connect(|client| {
            client
                .select(
                    "SELECT pg_catalog.quote_ident(n.nspname), e.extowner \
                     FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n \
                       ON n.oid OPERATOR(pg_catalog.=) e.extnamespace \
                     WHERE e.extname OPERATOR(pg_catalog.=) 'synthsearch'::pg_catalog.name",
                    Some(1),
                    &[],
                )?
                .first()
                .get_two::<String, pg_sys::Oid>()
        })
    });
    match found {
        Ok((Some(schema), Some(owner))) => Extension { schema, owner },
        _ => error(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            "extension \"synthsearch\" is not installed",
        ),
    }
}

/// Whether the current user may manage models (activate, import, export, drop, create, and
/// replace the active model by training): a superuser, a member of the role that owns the
/// extension, or a member of `synthsearch_admin`.
pub fn is_model_manager() -> bool {
    // Safety: reads the current user's role flags.
    if unsafe { pg_sys::superuser() } {
        return true;
    }
    let owner = extension().owner;
    crate::fmgr::spi_bool(
        "SELECT pg_catalog.pg_has_role(current_user, $1, 'MEMBER') \
            OR EXISTS (SELECT FROM pg_catalog.pg_roles r \
                       WHERE r.rolname OPERATOR(pg_catalog.=) $2::pg_catalog.name \
                         AND pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER'))",
        &[owner.into(), ADMIN_ROLE.into()],
    )
}

/// Raises 42501 unless the current user may manage models.
pub fn require_model_manager(what: &str) {
    require_privilege(is_model_manager(), || {
        format!(
            "permission denied to {what}: it needs superuser, membership in the role that owns the \
             extension synthsearch, or membership in {ADMIN_ROLE}"
        )
    });
}

/// Pins the search path of a background worker's whole session, right after it connects: the
/// database's and the role's `search_path` defaults (ALTER DATABASE / ALTER ROLE ... SET) were
/// applied at connection and must not decide what the worker's SQL means.
pub fn pin_session() {
    // Safety: the worker is connected and outside any transaction; PGC_S_OVERRIDE outranks every
    // other source, and the value is a valid list.
    unsafe {
        pg_sys::SetConfigOption(
            c"search_path".as_ptr(),
            SAFE_SEARCH_PATH.as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_OVERRIDE,
        );
    }
}
