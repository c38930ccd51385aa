//! `pretrainzero score`: mean negative log-likelihood and perplexity.

use crate::kernels::RewardStepBackend;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use super::DeviceArg;
use crate::backend::{run_on, BackendTask};
use crate::models::{score_sequence, PretrainedModel};
use crate::token_list::parse_token_ids;

#[derive(Debug, Clone, clap::Args)]
pub struct ScoreArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Text to score (needs tokenizer.json; special tokens such as BOS are added).
    #[arg(long, conflicts_with = "ids", required_unless_present = "ids")]
    pub text: Option<String>,
    /// Token ids to score, comma-separated.
    #[arg(long)]
    pub ids: Option<String>,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Print JSON with per-position `target_logprobs` and `logsumexp`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct ScoreOutput {
    ids: Vec<u32>,
    mean_nll: f64,
    perplexity: f64,
    target_logprobs: Vec<f32>,
    logsumexp: Vec<f32>,
}

pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    let json = args.json;
    let output = run_on(args.device.kind(), ScoreTask(args))??;
    if json {
        println!("{}", serde_json::to_string(&output)?);
    } else {
        println!(
            "tokens: {}  mean NLL: {:.6}  perplexity: {:.4}",
            output.ids.len(),
            output.mean_nll,
            output.perplexity
        );
    }
    Ok(())
}

struct ScoreTask(ScoreArgs);

impl BackendTask for ScoreTask {
    type Output = anyhow::Result<ScoreOutput>;

    fn run<B: RewardStepBackend>(self, device: &B::Device) -> Self::Output {
        let args = self.0;
        let pretrained = PretrainedModel::<B>::load(&args.model, device)
            .with_context(|| format!("loading model folder {}", args.model.display()))?;
        let ids = match (&args.text, &args.ids) {
            (_, Some(ids)) => parse_token_ids(ids).context("--ids")?,
            (Some(text), None) => {
                let tokenizer = pretrained.tokenizer.as_ref().with_context(|| {
                    format!(
                        "{}: no tokenizer.json, so --text cannot be encoded; pass --ids",
                        args.model.display()
                    )
                })?;
                tokenizer.encode(text, true)?
            }
            (None, None) => anyhow::bail!("give --text or --ids"),
        };
        let scores = score_sequence(&pretrained.model, &ids, device)?;
        let mean_nll = scores.mean_nll();
        Ok(ScoreOutput {
            ids,
            mean_nll,
            perplexity: mean_nll.exp(),
            target_logprobs: scores.target_logprobs,
            logsumexp: scores.logsumexp,
        })
    }
}
