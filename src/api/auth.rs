//! `POST /api/login`, `POST /api/logout`, `GET /api/me`, `POST /session/{tenant_id}`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::body::Body;
use super::models::{Me, Membership, sample};
use super::state::AppState;
use super::tags::ApiTags;
use crate::auth::{Caller, Via, password, session};
use crate::authz::{AccountAction, Action, Resource};
use crate::error::{ApiError, ApiResult, Errors, can};
use crate::invalidation::Key;
use crate::store::audit::{Actor, Event, action};
use crate::store::{self, TenantId};

/// E-mail and password.
#[derive(Debug, Object)]
#[oai(example)]
pub struct LoginRequest {
    #[oai(validator(min_length = 1, max_length = 320))]
    pub email: String,
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: String,
}

#[derive(ApiResponse)]
pub enum LoginResponse {
    /// Logged in: the `session` cookie is set (HttpOnly, SameSite=Lax).
    #[oai(status = 200)]
    Ok(Json<Me>, #[oai(header = "Set-Cookie")] String),
}

#[derive(ApiResponse)]
pub enum LogoutResponse {
    /// The session is ended server-side and the cookie cleared.
    #[oai(status = 204)]
    Done(#[oai(header = "Set-Cookie")] String),
}

/// The session's tenant after a switch.
#[derive(Debug, Object)]
#[oai(example)]
pub struct CurrentTenant {
    pub current_tenant_id: Uuid,
}

impl Example for LoginRequest {
    fn example() -> Self {
        LoginRequest {
            email: "admin@acme.example".into(),
            password: "acme-admin-demo".into(),
        }
    }
}

impl Example for PasswordChange {
    fn example() -> Self {
        PasswordChange {
            current_password: "acme-admin-demo".into(),
            new_password: "a longer passphrase".into(),
        }
    }
}

impl Example for CurrentTenant {
    fn example() -> Self {
        CurrentTenant {
            current_tenant_id: sample::TENANT,
        }
    }
}

pub struct AuthApi;

/// The current and the new password.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PasswordChange {
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub current_password: String,
    /// At least 8 characters.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub new_password: String,
}

#[derive(ApiResponse)]
pub enum PasswordChanged {
    /// Changed. Every session and every token issued before now is dead; a browser session that
    /// made the change gets a fresh `session` cookie.
    #[oai(status = 204)]
    Done(#[oai(header = "Set-Cookie")] Option<String>),
}

/// The peer's IP address (the throttling key of a client).
fn client_ip(req: &poem::Request) -> Option<std::net::IpAddr> {
    req.remote_addr().as_socket_addr().map(|addr| addr.ip())
}

/// Records a refused login: the account tried when it exists (never what was typed: an unknown
/// e-mail may be a password typed in the wrong field), with no actor (nobody authenticated).
async fn login_failed(state: &AppState, account: Option<store::UserId>) -> ApiResult<()> {
    let txn = sea_orm::TransactionTrait::begin(&state.db).await?;
    let event = Event::new(
        None,
        &Actor {
            user: None,
            credential: Some("password".into()),
        },
        action::LOGIN_FAILED,
        account.map(|u| format!("user:{}", u.0)),
    );
    store::audit::record(&txn, event).await?;
    txn.commit().await?;
    Ok(())
}

/// Checks a password off the reactor, in one of the bounded argon2 turns.
async fn verify_blocking(state: &AppState, given: String, stored: String) -> ApiResult<bool> {
    state
        .authn
        .throttle
        .argon2(move || password::verify(&given, &stored))
        .await
}

/// Hashes a password off the reactor, in one of the bounded argon2 turns.
async fn hash_blocking(state: &AppState, given: String) -> ApiResult<String> {
    state
        .authn
        .throttle
        .argon2(move || password::hash(&given))
        .await?
        .map_err(ApiError::Internal)
}

/// The caller's profile and memberships.
pub async fn me(state: &AppState, caller: &Caller) -> ApiResult<Me> {
    let user = store::users::find(&state.db, caller.user_id)
        .await?
        .ok_or(ApiError::InvalidCredentials)?;
    let memberships = store::tenants::all_for_user(&state.db, caller.user_id)
        .await?
        .into_iter()
        .map(|(tenant, role)| Membership {
            tenant_id: tenant.id,
            tenant_name: tenant.name,
            role,
        })
        .collect::<Vec<_>>();
    // A session stays in the tenant it was in when its user is removed from it, but that is no
    // tenant the user can act in: none is current.
    let current_tenant_id = caller
        .current_tenant()
        .map(|t| t.0)
        .filter(|id| memberships.iter().any(|m| m.tenant_id == *id));
    Ok(Me {
        id: user.id,
        email: user.email,
        login_count: user.login_count,
        current_tenant_id,
        memberships,
    })
}

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Log in with e-mail and password
    ///
    /// Starts a browser session: sets the `session` cookie and counts the login. The session's
    /// current tenant is the user's oldest membership (switch with `POST /session/{tenant_id}`).
    /// A wrong password and an unknown e-mail get the same 401, in the same time. Repeated
    /// failures for an account or from an address are refused for a while with 429 and
    /// `Retry-After` (never permanently); a request from another site is a 403.
    #[oai(path = "/api/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        req: &poem::Request,
        state: Data<&Arc<AppState>>,
        body: Body<LoginRequest>,
    ) -> Result<
        LoginResponse,
        Errors<{ can::BODY | can::UNAUTHORIZED | can::FORBIDDEN | can::TOO_MANY | can::SERVER }>,
    > {
        // Login CSRF: another site must not log a browser into an account of its choosing.
        state.authn.check_same_origin(req)?;
        let email = store::users::normalize_email(&body.email);
        let attempt = state.authn.throttle.attempt(&email, client_ip(req));
        // Every attempt is counted, and a throttled one refused, before any password is checked.
        state.authn.throttle.reserve(&attempt).await?;
        // No account has a NUL in its e-mail (and PostgreSQL cannot compare one): unknown.
        let user = if email.contains('\0') {
            None
        } else {
            store::users::find_by_email(&state.db, &email).await?
        };
        // Unknown e-mail: verify against a dummy hash so both failures take the same time.
        let stored = user.as_ref().map_or_else(
            || password::dummy_hash().to_owned(),
            |u| u.password_hash.clone(),
        );
        let given = body.0.password;
        let matches = verify_blocking(&state, given.clone(), stored).await?;
        let user = match user {
            Some(user) if matches && !user.disabled => user,
            _ => {
                state.metrics.login(false);
                state.authn.throttle.failed(&attempt).await?;
                login_failed(&state, user.map(|u| store::UserId(u.id))).await?;
                return Err(ApiError::LoginFailed.into());
            }
        };
        state.metrics.login(true);
        state.authn.throttle.succeeded(&attempt).await?;
        let user_id = store::UserId(user.id);
        // Hashes made with weaker parameters are upgraded now that the password is at hand.
        let upgraded = if password::needs_rehash(&user.password_hash) {
            Some(hash_blocking(&state, given).await?)
        } else {
            None
        };
        // The session starts in the oldest tenant the policies let this user select.
        let bundle = state.authz.bundle();
        let tenant = store::tenants::memberships_oldest_first(&state.db, user_id)
            .await?
            .into_iter()
            .find(|(tenant, role)| bundle.may_select(user_id, *tenant, role))
            .map(|(tenant, _)| tenant);
        // The session is written first (the write lock on SQLite), then the user is read again
        // behind any kill switch in progress (its row lock on PostgreSQL): a password change or
        // a disable that committed while the password was being checked refuses this login,
        // and one that comes later finds the session and ends it.
        let txn = sea_orm::TransactionTrait::begin(&state.db).await?;
        let (id, started) = state.authn.start_session(&txn, user_id, tenant).await?;
        let unchanged = store::users::find_for_update(&txn, user_id)
            .await?
            .is_some_and(|now| !now.disabled && now.password_hash == user.password_hash);
        if !unchanged {
            txn.rollback().await?;
            login_failed(&state, Some(user_id)).await?;
            return Err(ApiError::LoginFailed.into());
        }
        if let Some(upgraded) = upgraded {
            store::users::set_password_hash(&txn, user_id, upgraded).await?;
        }
        let caller = Caller {
            user_id,
            via: Via::Session {
                id_hash: session::hash_id(&id),
                current_tenant: tenant,
                created_at: started.created_at,
            },
        };
        let event = Event::new(
            None,
            &caller.actor(),
            action::LOGIN_SUCCEEDED,
            format!("user:{}", user_id.0),
        );
        let counted = store::users::count_login(
            sea_orm::ConnectionTrait::get_database_backend(&txn),
            user_id,
        );
        store::audit::record_with(&txn, event, counted).await?;
        txn.commit().await?;
        let profile = me(&state, &caller).await?;
        Ok(LoginResponse::Ok(
            Json(profile),
            session::cookie(&id, state.authn.secure_cookies),
        ))
    }

    /// Log out
    ///
    /// Ends the browser session server-side and clears the cookie. With a token there is no
    /// session to end; the call succeeds and changes nothing.
    #[oai(path = "/api/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
    ) -> Result<LogoutResponse, Errors<{ can::UNAUTHORIZED | can::FORBIDDEN | can::SERVER }>> {
        if let Via::Session { id_hash, .. } = &caller.via {
            store::sessions::delete(&state.db, id_hash).await?;
        }
        Ok(LogoutResponse::Done(session::clear_cookie(
            state.authn.secure_cookies,
        )))
    }

    /// Change your password
    ///
    /// Needs the current password (a stolen session alone cannot take the account over). Wrong
    /// current passwords count as failed logins and are throttled the same way (429). On success
    /// every session and every token of yours issued before now stops working; a browser session
    /// making the change is replaced by a fresh one. A read-only token may not (403).
    #[oai(
        path = "/api/me/password",
        method = "put",
        operation_id = "changePassword"
    )]
    async fn change_password(
        &self,
        req: &poem::Request,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        body: Body<PasswordChange>,
    ) -> Result<
        PasswordChanged,
        Errors<
            {
                can::BODY
                    | can::UNAUTHORIZED
                    | can::FORBIDDEN
                    | can::UNPROCESSABLE
                    | can::TOO_MANY
                    | can::SERVER
            },
        >,
    > {
        // Before the password is checked: a credential that may not change it learns nothing.
        state
            .authz
            .require_account(&caller, AccountAction::ChangePassword)?;
        let user = store::users::find(&state.db, caller.user_id)
            .await?
            .ok_or(ApiError::InvalidCredentials)?;
        let attempt = state.authn.throttle.attempt(&user.email, client_ip(req));
        state.authn.throttle.reserve(&attempt).await?;
        let body = body.0;
        if !verify_blocking(&state, body.current_password, user.password_hash).await? {
            state.authn.throttle.failed(&attempt).await?;
            return Err(ApiError::WrongPassword.into());
        }
        state.authn.throttle.succeeded(&attempt).await?;
        if body.new_password.chars().count() < password::MIN_PASSWORD_CHARS {
            return Err(ApiError::Validation {
                field: "new_password".into(),
                message: format!(
                    "must be at least {} characters",
                    password::MIN_PASSWORD_CHARS
                ),
            }
            .into());
        }
        let hash = hash_blocking(&state, body.new_password).await?;
        // One transaction: the new password, every session and token issued before it ended,
        // and the fresh session of a browser that made the change. A failure changes nothing.
        let txn = sea_orm::TransactionTrait::begin(&state.db).await?;
        store::users::set_password_hash(&txn, caller.user_id, hash).await?;
        store::users::end_credentials(&txn, caller.user_id).await?;
        let event = Event::new(
            None,
            &caller.actor(),
            action::PASSWORD_CHANGED,
            format!("user:{}", caller.user_id.0),
        );
        store::audit::record(&txn, event).await?;
        let cookie = match &caller.via {
            Via::Session { current_tenant, .. } => {
                let (id, _) = state
                    .authn
                    .start_session(&txn, caller.user_id, *current_tenant)
                    .await?;
                Some(session::cookie(&id, state.authn.secure_cookies))
            }
            Via::Token { .. } => None,
        };
        txn.commit().await?;
        state.caches.changed(Key::User(caller.user_id)).await;
        Ok(PasswordChanged::Done(cookie))
    }

    /// Log out everywhere
    ///
    /// Ends every session of yours (this one included) and every token you were issued so far,
    /// on every device, however many there are. Works with a session or a token, but not with a
    /// read-only token (403).
    #[oai(
        path = "/api/logout-everywhere",
        method = "post",
        operation_id = "logoutEverywhere"
    )]
    async fn logout_everywhere(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
    ) -> Result<LogoutResponse, Errors<{ can::UNAUTHORIZED | can::FORBIDDEN | can::SERVER }>> {
        state
            .authz
            .require_account(&caller, AccountAction::LogoutEverywhere)?;
        state
            .caches
            .end_everything(caller.user_id, &caller.actor())
            .await?;
        Ok(LogoutResponse::Done(session::clear_cookie(
            state.authn.secure_cookies,
        )))
    }

    /// Who am I
    ///
    /// The caller's id, e-mail, login count, the session's current tenant (null for tokens) and
    /// every tenant the caller belongs to with the role there.
    #[oai(path = "/api/me", method = "get", operation_id = "getMe")]
    async fn get_me(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
    ) -> Result<Json<Me>, Errors<{ can::UNAUTHORIZED | can::SERVER }>> {
        Ok(Json(me(&state, &caller).await?))
    }

    /// Switch the session's tenant
    ///
    /// Browser sessions work in one tenant at a time; requests to another tenant's URLs get
    /// `tenant_not_selected` until the session switches here. A tenant you are not a member of,
    /// and one that does not exist, both get the same 403. Tokens need no switching.
    #[oai(
        path = "/session/:tenant_id",
        method = "post",
        operation_id = "selectTenant"
    )]
    async fn select_tenant(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The tenant, by id (see `GET /api/tenants`).
        tenant_id: Path<Uuid>,
    ) -> Result<Json<CurrentTenant>, Errors<{ can::TENANT | can::SERVER }>> {
        let tenant = TenantId(tenant_id.0);
        let Via::Session { id_hash, .. } = &caller.via else {
            return Err(ApiError::SessionRequired.into());
        };
        state
            .authz
            .require(&caller, tenant, Action::SelectTenant, Resource::Tenant)
            .await?;
        store::sessions::set_tenant(&state.db, id_hash, tenant).await?;
        Ok(Json(CurrentTenant {
            current_tenant_id: tenant.0,
        }))
    }
}
