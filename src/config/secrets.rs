//! The secrets, which are never flags: read from the environment once, in
//! [`Secrets::from_env`], and handed to what needs them.

use secrecy::SecretString;

/// Every secret the program uses. They come from the environment only,
/// never from flags, so that they stay out of `ps` output; empty counts as
/// unset. `Debug` shows none of them.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// `ELEVENLABS_API_KEY`: the one key of the ElevenLabs workspace.
    pub elevenlabs_api_key: Option<SecretString>,
    /// `ELEVENLABS_WEBHOOK_SECRET`: checks `ElevenLabs-Signature`.
    pub webhook: Option<SecretString>,
    /// `VOICE_OPERATOR_LLM_SECRET`: the bearer secret of the custom-LLM route.
    pub llm: Option<SecretString>,
    /// `VOICE_OPERATOR_ADMIN_TOKEN`: the bearer token of the admin routes.
    pub admin: Option<SecretString>,
    /// `OPENAI_API_KEY`: the OpenAI-compatible server's key, if it wants one.
    pub openai_api_key: Option<SecretString>,
    /// `APP_SERVER_TOKEN`: the business app server's bearer token.
    pub app_server_token: Option<SecretString>,
    /// `TWILIO_AUTH_TOKEN`.
    pub twilio_auth_token: Option<SecretString>,
    /// `WHATSAPP_ACCESS_TOKEN`.
    pub whatsapp_access_token: Option<SecretString>,
    /// `SMTP_PASSWORD`.
    pub smtp_password: Option<SecretString>,
}

impl Secrets {
    /// Reads every secret from the process environment: the only place
    /// in the program that reads a variable itself (clap reads the rest).
    pub fn from_env() -> Secrets {
        let read = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| SecretString::from(v.trim().to_owned()))
        };
        Secrets {
            elevenlabs_api_key: read("ELEVENLABS_API_KEY"),
            webhook: read("ELEVENLABS_WEBHOOK_SECRET"),
            llm: read("VOICE_OPERATOR_LLM_SECRET"),
            admin: read("VOICE_OPERATOR_ADMIN_TOKEN"),
            openai_api_key: read("OPENAI_API_KEY"),
            app_server_token: read("APP_SERVER_TOKEN"),
            twilio_auth_token: read("TWILIO_AUTH_TOKEN"),
            whatsapp_access_token: read("WHATSAPP_ACCESS_TOKEN"),
            smtp_password: read("SMTP_PASSWORD"),
        }
    }
}
