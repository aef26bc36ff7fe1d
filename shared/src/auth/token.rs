//! EdDSA (Ed25519) tokens with every claim required and the algorithm pinned.
//!
//! Asymmetric, so that only the function that signs tokens (login) holds a key that can
//! make one: every other function verifies with the public key, and code execution in
//! one of them (predict parses untrusted images with five decoders) cannot mint an
//! admin token. Login reads the private key from Secrets Manager at cold start.

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
    /// Only where tokens are issued (login); `None` everywhere else.
    signing: Option<EncodingKey>,
    decoding: DecodingKey,
    validation: Validation,
    settings: AuthSettings,
}

/// A key pair for the token keys, as the deployment takes them: the PKCS#8 private key
/// (base64, the `JwtSigningKey` secret) and the raw public key (base64url, unpadded:
/// `JWT_PUBLIC_KEY`). `cargo xtask keygen` prints one; the local stack makes its own.
pub fn new_key_pair() -> Result<(String, String), ApiError> {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use base64::Engine;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| ApiError::Internal("generating an Ed25519 key failed".into()))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| ApiError::Internal("reading a fresh Ed25519 key failed".into()))?;
    Ok((
        base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref()),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
    ))
}

/// Why a signing key is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigningKeyError {
    #[error("the signing key is not base64 of a PKCS#8 Ed25519 private key")]
    Malformed,
    #[error("the signing key does not belong to JWT_PUBLIC_KEY: its tokens would not verify")]
    NotThePublicKeysPair,
}

impl TokenKeys {
    /// Keys that verify tokens only.
    pub fn new(settings: AuthSettings) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.leeway = LEEWAY_SECS;
        Self {
            signing: None,
            decoding: DecodingKey::from_ed_der(&settings.public_key),
            validation,
            settings,
        }
    }

    /// Keys that also sign, with `private_key` (base64 PKCS#8), which must be the pair of
    /// the settings' public key.
    pub fn with_signing_key(
        settings: AuthSettings,
        private_key: &str,
    ) -> Result<Self, SigningKeyError> {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(private_key.trim())
            .map_err(|_| SigningKeyError::Malformed)?;
        let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|_| SigningKeyError::Malformed)?;
        if pair.public_key().as_ref() != settings.public_key.as_slice() {
            return Err(SigningKeyError::NotThePublicKeysPair);
        }
        let mut keys = Self::new(settings);
        keys.signing = Some(EncodingKey::from_ed_der(&der));
        Ok(keys)
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
        let signing = self.signing.as_ref().ok_or_else(|| {
            ApiError::Internal(
                "this function holds no signing key: only login issues tokens".into(),
            )
        })?;
        let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, signing)
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

    /// One key pair for the whole test binary (generating is cheap, but tokens signed
    /// with one must verify with the same public key).
    fn pair() -> &'static (String, String) {
        static PAIR: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
        PAIR.get_or_init(|| new_key_pair().unwrap())
    }

    fn settings(public_key: &str) -> AuthSettings {
        AuthSettings {
            public_key: URL_SAFE_NO_PAD.decode(public_key).unwrap(),
            issuer: "inferloop".into(),
            audience: "inferloop-api".into(),
            token_ttl: Duration::from_secs(3600),
        }
    }

    fn keys() -> TokenKeys {
        TokenKeys::with_signing_key(settings(&pair().1), &pair().0).unwrap()
    }

    fn bob() -> Username {
        Username::parse("bob").unwrap()
    }

    /// Signed with the private key of `pair`.
    fn sign_with(claims: &serde_json::Value, pair: &(String, String)) -> String {
        let der = base64::engine::general_purpose::STANDARD
            .decode(&pair.0)
            .unwrap();
        jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            claims,
            &EncodingKey::from_ed_der(&der),
        )
        .unwrap()
    }

    fn sign(claims: &serde_json::Value) -> String {
        sign_with(claims, pair())
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
        // HS256 keyed with the public key (the classic confusion), and HS512.
        for (alg, key) in [
            (Algorithm::HS256, URL_SAFE_NO_PAD.decode(&pair().1).unwrap()),
            (
                Algorithm::HS512,
                b"any-secret-of-plenty-bytes-0123456789".to_vec(),
            ),
        ] {
            let token = jsonwebtoken::encode(
                &Header::new(alg),
                &good_claims(),
                &EncodingKey::from_secret(&key),
            )
            .unwrap();
            assert_eq!(code_of(keys().verify(&token)), "invalid_token", "{alg:?}");
        }
    }

    #[test]
    fn only_a_signing_key_signs_and_it_must_match_the_public_key() {
        let verify_only = TokenKeys::new(settings(&pair().1));
        let err = verify_only.issue(&bob(), "01JBOB", Role::User).unwrap_err();
        assert!(err.status_code().is_server_error());
        let other = new_key_pair().unwrap();
        assert_eq!(
            TokenKeys::with_signing_key(settings(&pair().1), &other.0).err(),
            Some(SigningKeyError::NotThePublicKeysPair)
        );
        assert_eq!(
            TokenKeys::with_signing_key(settings(&pair().1), "not a key").err(),
            Some(SigningKeyError::Malformed)
        );
    }

    #[test]
    fn the_wrong_key_audience_or_issuer_is_refused() {
        assert!(keys().verify(&sign(&good_claims())).is_ok());
        let wrong_key = sign_with(&good_claims(), &new_key_pair().unwrap());
        assert_eq!(code_of(keys().verify(&wrong_key)), "invalid_token");
        let mut claims = good_claims();
        claims["aud"] = json!("someone-else");
        assert_eq!(code_of(keys().verify(&sign(&claims))), "invalid_token");
        let mut claims = good_claims();
        claims["iss"] = json!("evil");
        assert_eq!(code_of(keys().verify(&sign(&claims))), "invalid_token");
    }

    #[test]
    fn every_claim_is_required() {
        for missing in ["sub", "role", "iat", "exp", "iss", "aud", "jti", "uid"] {
            let mut claims = good_claims();
            claims.as_object_mut().unwrap().remove(missing);
            assert_eq!(
                code_of(keys().verify(&sign(&claims))),
                "invalid_token",
                "a token without {missing} must be refused"
            );
        }
    }

    #[test]
    fn unknown_roles_and_future_tokens_are_refused() {
        let mut claims = good_claims();
        claims["role"] = json!("root");
        assert_eq!(code_of(keys().verify(&sign(&claims))), "invalid_token");
        let mut claims = good_claims();
        claims["iat"] = json!(now_secs() + 3000);
        claims["exp"] = json!(now_secs() + 6000);
        assert_eq!(code_of(keys().verify(&sign(&claims))), "invalid_token");
    }
}
