//! The mock's refusals, answered in OpenAI's error shape so that a client's error handling
//! sees what it would see from the real API.

use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why a request gets no stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// A key is configured and the request did not bring it.
    Unauthorized,
    /// The body was not JSON, or a field had the wrong type.
    MalformedBody(String),
    /// A well-formed request the mock does not serve, such as one without `"stream": true`.
    InvalidRequest(String),
    /// No such path.
    NotFound,
}

impl ApiError {
    /// The HTTP status the error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::MalformedBody(_) | Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
        }
    }

    /// The message for the client. Never contains the configured key.
    pub fn message(&self) -> String {
        match self {
            Self::Unauthorized => "Incorrect or missing API key.".into(),
            Self::MalformedBody(why) => format!("We could not parse the JSON body: {why}"),
            Self::InvalidRequest(why) => why.clone(),
            Self::NotFound => "Unknown path.".into(),
        }
    }

    /// OpenAI's machine-readable `code`, where it has one.
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Unauthorized => Some("invalid_api_key"),
            Self::NotFound => Some("unknown_url"),
            Self::MalformedBody(_) | Self::InvalidRequest(_) => None,
        }
    }

    /// The JSON body: `{"error":{"message":…,"type":"invalid_request_error","code":…}}`.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.message(),
                "type": "invalid_request_error",
                "param": null,
                "code": self.code(),
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let headers = [(CONTENT_TYPE, "application/json")];
        (self.status(), headers, self.body().to_string()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_the_openai_shape() {
        for error in [
            ApiError::Unauthorized,
            ApiError::MalformedBody("eof".into()),
            ApiError::InvalidRequest("no".into()),
            ApiError::NotFound,
        ] {
            let body = error.body();
            assert_eq!(body["error"]["type"], "invalid_request_error", "{error:?}");
            assert!(body["error"]["message"].is_string(), "{error:?}");
        }
    }

    #[test]
    fn statuses_follow_the_kind() {
        assert_eq!(ApiError::Unauthorized.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            ApiError::MalformedBody(String::new()).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ApiError::InvalidRequest(String::new()).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(ApiError::NotFound.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            ApiError::Unauthorized.body()["error"]["code"],
            "invalid_api_key"
        );
    }
}
