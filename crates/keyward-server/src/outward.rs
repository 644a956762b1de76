//! Core records made into the API's wire types (and policy rules back): what goes on the wire is
//! declared in `keyward-api`, never a core struct serialised as it happens to be.
use keyward_api::wire;
use keyward_core::{format_rfc3339, AuditEntry, Capability, DoctorReport, KeyJob, KeyStatus, Rule, VerifyReport};

use crate::error::ApiError;

/// An audit entry as the API shows it.
pub(crate) fn audit_entry(e: AuditEntry) -> wire::AuditEntryOut {
    wire::AuditEntryOut {
        seq: e.seq,
        time: e.time,
        request_id: e.request_id,
        accessor: e.accessor,
        remote_addr: e.remote_addr,
        user_agent: e.user_agent,
        operation: e.operation,
        mount: e.mount,
        path: e.path,
        fields: e.fields,
        status: e.status,
        error: e.error,
        details: e.details,
    }
}

/// The result of walking the audit chain.
pub(crate) fn verify_report(r: VerifyReport) -> wire::AuditVerifyReport {
    wire::AuditVerifyReport {
        ok: r.ok,
        entries: r.entries,
        last_seq: r.last_seq,
        last_hash: r.last_hash,
        broken_seq: r.broken_seq,
        reason: r.reason,
        archived_seq: r.archived_seq,
        archive: None,
    }
}

/// The check of an archive directory.
pub(crate) fn archive_check(c: keyward_core::ArchiveCheck) -> wire::ArchiveCheck {
    wire::ArchiveCheck {
        ok: c.ok,
        segments: c.segments,
        entries: c.entries,
        last_seq: c.last_seq,
        unfinished: c.unfinished,
        broken_file: c.broken_file,
        reason: c.reason,
    }
}

/// What an archive run did.
pub(crate) fn archive_report(o: keyward_core::ArchiveOutcome) -> wire::ArchiveReport {
    wire::ArchiveReport {
        segments: o.segments,
        entries: o.entries,
        archived_seq: o.archived_seq,
        set_aside: o.set_aside,
        space: o.space.map(|s| wire::SpaceReport {
            action: s.action,
            bytes_before: s.bytes_before,
            bytes_after: s.bytes_after,
        }),
        error: o.error,
    }
}

/// A policy's rules as the API shows them.
pub(crate) fn rules_out(rules: &[Rule]) -> Vec<wire::PolicyRule> {
    rules
        .iter()
        .map(|r| wire::PolicyRule {
            path: r.path.clone(),
            capabilities: r.capabilities.iter().map(|c| c.as_str().to_owned()).collect(),
        })
        .collect()
}

/// Policy rules from a request (validated by the policy service when written).
pub(crate) fn rules_in(rules: Vec<wire::PolicyRule>) -> Result<Vec<Rule>, ApiError> {
    rules
        .into_iter()
        .map(|r| {
            let capabilities = r
                .capabilities
                .iter()
                .map(|name| {
                    Capability::from_name(name)
                        .ok_or_else(|| ApiError::bad_request(format!("rule {:?}: unknown capability {name:?}", r.path)))
                })
                .collect::<Result<_, _>>()?;
            Ok(Rule { path: r.path, capabilities })
        })
        .collect()
}

/// Master keys and data-key versions with their users.
pub(crate) fn key_status(s: KeyStatus) -> wire::KeyStatus {
    wire::KeyStatus {
        keks: s
            .keks
            .into_iter()
            .map(|k| wire::MasterKeyUsage {
                tag: k.tag,
                configured: k.configured,
                active: k.active,
                wrapped_keys: k.wrapped_keys,
                retirable: k.retirable,
            })
            .collect(),
        deks: s
            .deks
            .into_iter()
            .map(|d| wire::DataKeyUsage { mount: d.mount, version: d.version, kek_tag: d.kek_tag, blobs: d.blobs })
            .collect(),
    }
}

/// A key job (its resume cursor and mount id stay inside the server).
pub(crate) fn key_job(j: KeyJob) -> wire::KeyJob {
    wire::KeyJob {
        id: j.id.to_string(),
        kind: j.kind,
        mount: j.mount,
        status: j.status,
        total: j.total,
        done: j.done,
        owner: j.owner,
        started_time: format_rfc3339(j.started_at),
        updated_time: format_rfc3339(j.updated_at),
        error: j.error,
    }
}

/// What the doctor found.
pub(crate) fn doctor(r: DoctorReport) -> wire::DoctorReport {
    wire::DoctorReport {
        ok: r.ok,
        master_keys_ok: r.master_keys_ok,
        self_test_ok: r.self_test_ok,
        audit_ok: r.audit_ok,
        rows_ok: r.rows_ok,
        rows_checked: r.rows_checked,
        mounts: r.mounts,
        checked: r.checked,
        failures: r.failures,
        problems: r.problems,
        inert_rules: r.inert_rules,
    }
}
