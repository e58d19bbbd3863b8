//! Key rotations from several processes at once, beside readers and a running dashboard that
//! loads pages throughout: every command succeeds, and the vault always opens with every token.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

use super::{Run, stoxide};

const ACCOUNTS: [(&str, &str); 3] = [
    ("RACE01", "sim_at_race_0001_aaaaaaaaaaaaaaaaaaaaaaaa"),
    ("RACE02", "sim_at_race_0002_bbbbbbbbbbbbbbbbbbbbbbbb"),
    ("RACE03", "sim_at_race_0003_cccccccccccccccccccccccc"),
];
const PASSWORD: &str = "race test admin password";

fn rounds() -> usize {
    std::env::var("STOXIDE_VAULT_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

fn cmd(data: &Path, args: &[&str]) -> std::process::Command {
    let mut c = stoxide();
    c.env("STOXIDE_DATA_DIR", data).args(args);
    c
}

fn spawn(data: &Path, args: &[&str]) -> Child {
    cmd(data, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().expect("wait"))
}

struct Dashboard {
    child: Child,
    url: String,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dashboard(data: &Path) -> Dashboard {
    let mut child = cmd(data, &["serve", "--addr", "127.0.0.1:0"])
        .env("STOXIDE_ADMIN_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let url = loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).expect("read") > 0, "serve printed no URL");
        if let Some(u) = line.trim().strip_prefix("dashboard: ") {
            break u.trim_end_matches('/').to_owned();
        }
    };
    Dashboard { child, url }
}

fn cookie(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .map(|v| format!("{name}={v}"))
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

/// Signs in to the dashboard; answers the session cookie.
async fn sign_in(http: &reqwest::Client, url: &str) -> String {
    let page = http.get(format!("{url}/login")).send().await.expect("login page");
    let pre = cookie(&page, "stoxide_login_csrf");
    let html = page.text().await.expect("html");
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    let csrf = html[at..at + 64].to_owned();
    let resp = http
        .post(format!("{url}/login"))
        .header("cookie", pre)
        .form(&[("username", "admin"), ("password", PASSWORD), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("sign in");
    assert_eq!(resp.status(), 303, "signed in");
    cookie(&resp, "stoxide_session")
}

#[test]
fn rotations_beside_readers_and_a_running_dashboard_never_brick_the_vault() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    for (id, token) in ACCOUNTS {
        let file = tmp.path().join(format!("{id}.token"));
        std::fs::write(&file, format!("{token}\n")).expect("token file");
        let r = Run::from(
            cmd(&data, &["token", "import", "--offline", "--account", id])
                .arg(&file)
                .output()
                .expect("import"),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let dash = dashboard(&data);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let session = rt.block_on(sign_in(&http, &dash.url));

    for round in 0..rounds() {
        let rotations: Vec<Child> = (0..3).map(|_| spawn(&data, &["vault", "rotate-key"])).collect();
        let readers: Vec<(&str, Child)> = ACCOUNTS
            .iter()
            .chain(ACCOUNTS.iter())
            .map(|(id, token)| (*token, spawn(&data, &["token", "export", "--account", id])))
            .collect();
        // Pages load while the processes run.
        let pages = rt.block_on(async {
            let mut pages = 0;
            for _ in 0..15 {
                let resp = http
                    .get(format!("{}/", dash.url))
                    .header("cookie", &session)
                    .send()
                    .await
                    .expect("page");
                let status = resp.status();
                let body = resp.text().await.expect("body");
                assert_eq!(status, 200, "round {round}: the dashboard answered {status}: {body}");
                assert!(body.contains("RACE02"), "round {round}: the page lists the accounts");
                pages += 1;
            }
            pages
        });
        assert_eq!(pages, 15);
        for child in rotations {
            let r = finish(child);
            assert_eq!(r.code, 0, "round {round}: rotate-key failed: {}", r.stderr);
            assert!(r.stdout.contains("re-encrypted 3 secret(s)"), "{}", r.stdout);
        }
        for (token, child) in readers {
            let r = finish(child);
            assert_eq!(r.code, 0, "round {round}: token export failed: {}", r.stderr);
            assert_eq!(r.stdout.trim(), token, "round {round}: the token reads back");
        }
        assert!(
            !data.join("vault.key.next").exists(),
            "round {round}: a next key was left behind"
        );
    }
    for (id, token) in ACCOUNTS {
        let r = Run::from(
            cmd(&data, &["token", "export", "--account", id])
                .output()
                .expect("export"),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(r.stdout.trim(), token);
    }
}
