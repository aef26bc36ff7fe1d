//! HS256 tokens with every claim required and the algorithm pinned.

use crate::auth::Principal;
use crate::config::AuthSettings;
use crate::domain::{Role, Username};
use crate::error::ApiError;
use crate::time::now_secs;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Seconds of clock skew tolerated between the issuing and the verifying function.
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// The account's id (its `user_id`): a name deleted and taken again is another
    /// account, and this one's tokens do not work for it.
    pub uid: String,
    pub role: Role,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
    pub jti: String,
}

#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
    pub claims: Claims,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    settings: AuthSettings,
}

impl TokenKeys {
    pub fn new(settings: AuthSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.leeway = LEEWAY_SECS;
        Self {
            encoding: EncodingKey::from_secret(&settings.jwt_secret),
            decoding: DecodingKey::from_secret(&settings.jwt_secret),
            validation,
            settings,
        }
    }

    pub fn issue(
        &self,
        username: &Username,
        user_id: &str,
        role: Role,
    ) -> Result<IssuedToken, ApiError> {
        self.issue_at(username, user_id, role, now_secs())
    }

    pub fn issue_at(
        &self,
        username: &Username,
        user_id: &str,
        role: Role,
        now: u64,
    ) -> Result<IssuedToken, ApiError> {
        let ttl = self.settings.token_ttl.as_secs();
        let claims = Claims {
            sub: username.as_str().to_owned(),
            uid: user_id.to_owned(),
            role,
            iat: now,
            exp: now + ttl,
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            jti: ulid::Ulid::new().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("signing a token failed: {e}")))?;
        Ok(IssuedToken {
            token,
            expires_in: ttl,
            claims,
        })
    }

    /// Checks signature, algorithm, issuer, audience, expiry, and that `iat`, `jti`, `sub`
    /// and `role` are present and sane.
    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let invalid =
            |why: &str| ApiError::unauthorized("invalid_token", format!("the token {why}"));
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized("token_expired", "the token has expired; log in again")
                }
                jsonwebtoken::errors::ErrorKind::InvalidAudience => invalid("is not for this API"),
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                    invalid("was not issued by inferloop")
                }
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                    invalid("uses an algorithm this API does not accept")
                }
                jsonwebtoken::errors::ErrorKind::InvalidSignature => invalid("has a bad signature"),
                _ => invalid("is not valid"),
            })?;
        let claims = data.claims;
        if claims.iat > now_secs() + LEEWAY_SECS || claims.iat > claims.exp {
            return Err(invalid("was issued in the future"));
        }
        if claims.jti.is_empty() {
            return Err(invalid("has no id"));
        }
        if claims.uid.is_empty() {
            return Err(invalid("names no account"));
        }
        let username = Username::parse(&claims.sub).map_err(|_| invalid("names no valid user"))?;
        Ok(Principal {
            username,
            user_id: claims.uid,
            role: claims.role,
            token_id: claims.jti,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;
    use std::time::Duration;

    fn settings(secret: &str) -> AuthSettings {
        AuthSettings {
            jwt_secret: secret.as_bytes().to_vec(),
            issuer: "inferloop".into(),
            audience: "inferloop-api".into(),
            token_ttl: Duration::from_secs(3600),
        }
    }

    const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";

    fn keys() -> TokenKeys {
        TokenKeys::new(settings(SECRET))
    }

    fn bob() -> Username {
        Username::parse("bob").unwrap()
    }

    fn sign(claims: &serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn good_claims() -> serde_json::Value {
        let now = now_secs();
        json!({"sub": "bob", "uid": "01JBOB", "role": "admin", "iat": now, "exp": now + 600,
               "iss": "inferloop", "aud": "inferloop-api", "jti": "01J"})
    }

    fn code_of(result: Result<Principal, ApiError>) -> &'static str {
        result.unwrap_err().code()
    }

    #[test]
    fn an_issued_token_verifies_and_carries_every_claim() {
        let issued = keys().issue(&bob(), "01JBOB", Role::Admin).unwrap();
        assert_eq!(issued.expires_in, 3600);
        assert_eq!(issued.claims.exp - issued.claims.iat, 3600);
        let principal = keys().verify(&issued.token).unwrap();
        assert_eq!(principal.username, bob());
        assert_eq!(principal.role, Role::Admin);
        assert_eq!(principal.user_id, "01JBOB");
        assert_eq!(principal.token_id, issued.claims.jti);
        let other = keys().issue(&bob(), "01JBOB", Role::Admin).unwrap();
        assert_ne!(other.claims.jti, issued.claims.jti, "jti must be unique");
    }

    #[test]
    fn an_expired_token_is_refused() {
        let issued = keys()
            .issue_at(&bob(), "01JBOB", Role::User, now_secs() - 7200)
            .unwrap();
        assert_eq!(code_of(keys().verify(&issued.token)), "token_expired");
    }

    #[test]
    fn garbage_is_refused() {
        for token in ["", "garbage", "a.b.c", "....", "ünïcødé.x.y"] {
            assert_eq!(code_of(keys().verify(token)), "invalid_token", "{token}");
        }
    }

    #[test]
    fn alg_none_is_refused() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(good_claims().to_string());
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            assert_eq!(code_of(keys().verify(&token)), "invalid_token");
        }
    }

    #[test]
    fn another_algorithm_is_refused() {
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &good_claims(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(code_of(keys().verify(&token)), "invalid_token");
    }

    #[test]
    fn the_wrong_key_audience_or_issuer_is_refused() {
        assert!(keys().verify(&sign(&good_claims(), SECRET)).is_ok());
        let wrong_key = sign(&good_claims(), "another-secret-that-is-also-long-enough!!");
        assert_eq!(code_of(keys().verify(&wrong_key)), "invalid_token");
        let mut claims = good_claims();
        claims["aud"] = json!("someone-else");
        assert_eq!(
            code_of(keys().verify(&sign(&claims, SECRET))),
            "invalid_token"
        );
        let mut claims = good_claims();
        claims["iss"] = json!("evil");
        assert_eq!(
            code_of(keys().verify(&sign(&claims, SECRET))),
            "invalid_token"
        );
    }

    #[test]
    fn every_claim_is_required() {
        for missing in ["sub", "role", "iat", "exp", "iss", "aud", "jti", "uid"] {
            let mut claims = good_claims();
            claims.as_object_mut().unwrap().remove(missing);
            assert_eq!(
                code_of(keys().verify(&sign(&claims, SECRET))),
                "invalid_token",
                "a token without {missing} must be refused"
            );
        }
    }

    #[test]
    fn unknown_roles_and_future_tokens_are_refused() {
        let mut claims = good_claims();
        claims["role"] = json!("root");
        assert_eq!(
            code_of(keys().verify(&sign(&claims, SECRET))),
            "invalid_token"
        );
        let mut claims = good_claims();
        claims["iat"] = json!(now_secs() + 3000);
        claims["exp"] = json!(now_secs() + 6000);
        assert_eq!(
            code_of(keys().verify(&sign(&claims, SECRET))),
            "invalid_token"
        );
    }
}
