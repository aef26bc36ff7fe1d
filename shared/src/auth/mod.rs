//! Who is calling, and may they: JWTs, roles, passwords, lockout (DESIGN.md §4).

pub mod accounts;
pub mod lockout;
pub mod password;
pub mod token;

use crate::domain::{Role, Username};
use crate::error::ApiError;
use lambda_http::Request;

pub use token::{Claims, IssuedToken, TokenKeys};

/// An authenticated caller, from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub username: Username,
    /// The account's id: what the caller owns is stored under it.
    pub user_id: String,
    pub role: Role,
    pub token_id: String,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::admins_only())
        }
    }
}

/// The caller of `req`, from its `Authorization: Bearer …` header: 401 without a valid token.
pub fn authenticate(req: &Request, keys: &TokenKeys) -> Result<Principal, ApiError> {
    let header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing_token",
                "this route needs an Authorization: Bearer token",
            )
        })?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| {
            let (scheme, token) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "invalid_token",
                "the Authorization header must be \"Bearer <token>\"",
            )
        })?;
    keys.verify(token)
}
