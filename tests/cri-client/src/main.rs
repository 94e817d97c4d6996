//! nsboot-cri-client: one CRI call per run, the way the kubelet makes it, for the engine test
//! tests/engines/cri.rs.
//!
//!   nsboot-cri-client SOCKET METHOD [JSON]   the RuntimeService or ImageService call METHOD
//!                                            (snake_case) with JSON merged over the request's
//!                                            defaults; prints the response as JSON
//!   nsboot-cri-client SOCKET stream URL      attach to an Exec URL (websocket, the
//!                                            v4.channel.k8s.io protocol): prints the
//!                                            container's stdout, exits with its exit status
//!
//! A failed call prints the gRPC status on stderr and exits 1.

use std::io::Write;

use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tonic::transport::{Channel, Endpoint, Uri};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        die("usage: nsboot-cri-client SOCKET METHOD [JSON] | SOCKET stream URL");
    }
    let json = args.get(3).map(String::as_str).unwrap_or("{}");
    if args[2] == "stream" {
        std::process::exit(stream(json));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| die(&format!("tokio runtime: {e}")));
    match rt.block_on(call(&args[1], &args[2], json)) {
        Ok(out) => println!("{out}"),
        Err(e) => die(&e),
    }
}

fn die(msg: &str) -> ! {
    eprintln!("nsboot-cri-client: {msg}");
    std::process::exit(1)
}

/// `T` from `json`, whose absent fields take their defaults: a request names only the fields
/// it sets. prost's serde derive requires every field, so each missing one is filled in from
/// what the type expects, as the error names it, until the request parses.
fn request<T: DeserializeOwned>(json: &str) -> Result<T, String> {
    let mut v: Value = serde_json::from_str(json).map_err(|e| format!("request {json}: {e}"))?;
    for _ in 0..2000 {
        let err = match serde_path_to_error::deserialize::<_, T>(v.clone()) {
            Ok(t) => return Ok(t),
            Err(e) => e,
        };
        let path: Vec<Segment> = err.path().iter().cloned().collect();
        let msg = err.inner().to_string();
        let (at, fill) = if let Some(field) = msg
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            (Some(field.to_string()), Value::Null)
        } else if msg.starts_with("invalid type: null, expected ") {
            (
                None,
                default_for(&msg).ok_or_else(|| format!("request {json}: {err}"))?,
            )
        } else {
            return Err(format!("request {json}: {err}"));
        };
        let slot = walk(&mut v, &path).ok_or_else(|| format!("request {json}: {err}"))?;
        match at {
            Some(field) => match slot {
                Value::Object(m) => {
                    m.insert(field, fill);
                }
                _ => return Err(format!("request {json}: {err}")),
            },
            None => *slot = fill,
        }
    }
    Err(format!("request {json}: cannot fill in its defaults"))
}

use serde_path_to_error::Segment;

/// The value at `path` in `v`.
fn walk<'a>(v: &'a mut Value, path: &[Segment]) -> Option<&'a mut Value> {
    let mut cur = v;
    for seg in path {
        cur = match seg {
            Segment::Map { key } | Segment::Enum { variant: key } => cur.get_mut(key.as_str())?,
            Segment::Seq { index } => cur.get_mut(*index)?,
            Segment::Unknown => return None,
        };
    }
    Some(cur)
}

/// The default of the type serde's "expected ..." names.
fn default_for(msg: &str) -> Option<Value> {
    let want = msg.rsplit("expected ").next()?;
    Some(match want {
        "a string" => Value::String(String::new()),
        "a boolean" => Value::Bool(false),
        "a sequence" => Value::Array(Vec::new()),
        "a map" => Value::Object(Default::default()),
        w if w.starts_with("struct ") => Value::Object(Default::default()),
        w if ["i32", "i64", "u32", "u64", "f32", "f64"].contains(&w) => Value::from(0),
        _ => return None,
    })
}

async fn channel(socket: &str) -> Result<Channel, String> {
    let path = socket.to_string();
    Endpoint::try_from("http://[::]:0")
        .map_err(|e| e.to_string())?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await
        .map_err(|e| format!("connect {socket}: {e}"))
}

/// One arm per method: `name => Client::method(RequestType)`.
macro_rules! dispatch {
    ($method:expr, $json:expr, $rt:ident, $img:ident; $($name:literal => $client:ident . $f:ident ($req:ty);)*) => {
        match $method {
            $($name => {
                let req: $req = request($json)?;
                let resp = $client.$f(req).await.map_err(|s| format!("{}: {:?}: {}", $name, s.code(), s.message()))?;
                serde_json::to_string(resp.get_ref()).map_err(|e| e.to_string())
            })*
            other => Err(format!("unknown method {other}")),
        }
    };
}

async fn call(socket: &str, method: &str, json: &str) -> Result<String, String> {
    let ch = channel(socket).await?;
    let mut rt = RuntimeServiceClient::new(ch.clone());
    let mut img = ImageServiceClient::new(ch);
    dispatch!(method, json, rt, img;
        "version" => rt.version(VersionRequest);
        "status" => rt.status(StatusRequest);
        "run_pod_sandbox" => rt.run_pod_sandbox(RunPodSandboxRequest);
        "stop_pod_sandbox" => rt.stop_pod_sandbox(StopPodSandboxRequest);
        "remove_pod_sandbox" => rt.remove_pod_sandbox(RemovePodSandboxRequest);
        "pod_sandbox_status" => rt.pod_sandbox_status(PodSandboxStatusRequest);
        "list_pod_sandbox" => rt.list_pod_sandbox(ListPodSandboxRequest);
        "create_container" => rt.create_container(CreateContainerRequest);
        "start_container" => rt.start_container(StartContainerRequest);
        "stop_container" => rt.stop_container(StopContainerRequest);
        "remove_container" => rt.remove_container(RemoveContainerRequest);
        "list_containers" => rt.list_containers(ListContainersRequest);
        "container_status" => rt.container_status(ContainerStatusRequest);
        "update_container_resources" => rt.update_container_resources(UpdateContainerResourcesRequest);
        "exec_sync" => rt.exec_sync(ExecSyncRequest);
        "exec" => rt.exec(ExecRequest);
        "container_stats" => rt.container_stats(ContainerStatsRequest);
        "pod_sandbox_stats" => rt.pod_sandbox_stats(PodSandboxStatsRequest);
        "list_images" => img.list_images(ListImagesRequest);
        "image_status" => img.image_status(ImageStatusRequest);
    )
}

/// Attach to an Exec URL as kubectl does (websocket, v4.channel.k8s.io: a binary message's
/// first byte is its channel: 1 stdout, 2 stderr, 3 the status as JSON); returns the exit status.
fn stream(url: &str) -> i32 {
    use tungstenite::client::IntoClientRequest;
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut req = ws_url
        .as_str()
        .into_client_request()
        .unwrap_or_else(|e| die(&format!("{url}: {e}")));
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v4.channel.k8s.io".parse().unwrap(),
    );
    let (mut ws, _) = tungstenite::connect(req).unwrap_or_else(|e| die(&format!("{url}: {e}")));
    let mut code = 0;
    let mut out = std::io::stdout();
    loop {
        let msg = match ws.read() {
            Ok(m) => m,
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => break,
            Err(tungstenite::Error::Protocol(_)) => break,
            Err(e) => die(&format!("{url}: {e}")),
        };
        if std::env::var_os("NSBOOT_CRI_DEBUG").is_some() {
            eprintln!("ws: {msg:?}");
        }
        let data = match msg {
            tungstenite::Message::Binary(d) => d.to_vec(),
            tungstenite::Message::Close(_) => break,
            _ => continue,
        };
        let Some((&ch, body)) = data.split_first() else {
            continue;
        };
        match ch {
            1 => {
                let _ = out.write_all(body);
            }
            2 => {
                let _ = std::io::stderr().write_all(body);
            }
            3 if !body.is_empty() => code = exit_code(body),
            _ => {}
        }
    }
    let _ = out.flush();
    code
}

/// The exit status in a metav1.Status: 0 on Success, the ExitCode cause's number on failure.
fn exit_code(status: &[u8]) -> i32 {
    let v: Value = serde_json::from_slice(status).unwrap_or(Value::Null);
    if v["status"] == "Success" {
        return 0;
    }
    v["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["reason"] == "ExitCode")
        .and_then(|c| c["message"].as_str()?.parse().ok())
        .unwrap_or_else(|| die(&format!("exec failed: {}", String::from_utf8_lossy(status))))
}
