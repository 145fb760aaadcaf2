//! The gateway logs in upstream with SCRAM-SHA-256, MD5 and cleartext passwords against a
//! private cluster that demands them, and reports a refused upstream login clearly.

use crate::common;

use common::cluster::Cluster;
use common::{Dir, start};

const HBA: &str = "host all md5_user 127.0.0.1/32 md5\n\
                   host all clear_user 127.0.0.1/32 password\n\
                   host all all 127.0.0.1/32 scram-sha-256\n";

#[tokio::test]
async fn upstream_scram_md5_and_cleartext_logins() {
    let cluster = Cluster::start(HBA);
    let su = cluster.superuser().await;
    su.batch_execute(
        "SET password_encryption = 'scram-sha-256'; CREATE ROLE scram_user LOGIN PASSWORD 'scram-pw';
         CREATE ROLE clear_user LOGIN PASSWORD 'clear-pw';
         SET password_encryption = 'md5'; CREATE ROLE md5_user LOGIN PASSWORD 'md5-pw';",
    )
    .await
    .unwrap();
    let dir = Dir::new();
    let mut config = format!(
        "[[groups]]\nname = \"eng\"\n[[users]]\nname = \"alice\"\ngroups = [\"eng\"]\npassword = \"alice-password\"\n\
         [[resources]]\nname = \"private\"\nprotocol = \"postgres\"\naddress = \"127.0.0.1:{}\"\ntls = \"disable\"\n",
        cluster.port
    );
    for (rr, user, pw) in [
        ("via-scram", "scram_user", "scram-pw"),
        ("via-md5", "md5_user", "md5-pw"),
        ("via-clear", "clear_user", "clear-pw"),
        ("wrong-pw", "scram_user", "nope"),
    ] {
        config.push_str(&format!(
            "[[resource_roles]]\nname = \"{rr}\"\nresource = \"private\"\ndatabase = \"postgres\"\nuser = \"{user}\"\npassword = \"{pw}\"\nallowed_groups = [\"eng\"]\n"
        ));
    }
    dir.write_config(None, &config);
    let gw = start(&dir).await;
    let port = gw.postgres_addr.unwrap().port();
    for (rr, user) in [
        ("via-scram", "scram_user"),
        ("via-md5", "md5_user"),
        ("via-clear", "clear_user"),
    ] {
        let conn =
            format!("host=127.0.0.1 port={port} user=alice password=alice-password dbname={rr}");
        let (c, conn) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("{rr}: {e}"));
        tokio::spawn(conn);
        let who: String = c
            .query_one("select current_user::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(who, user, "{rr}");
    }
    let conn =
        format!("host=127.0.0.1 port={port} user=alice password=alice-password dbname=wrong-pw");
    let err = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .err()
        .unwrap();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "08004");
    assert!(
        !db.message().contains("scram_user"),
        "the upstream user is not revealed: {}",
        db.message()
    );
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let events = common::pg::read_events(&dir.path().join("audit"));
    let refused = events
        .iter()
        .find(|e| e["resource_role"] == "wrong-pw")
        .unwrap();
    assert!(
        refused["reason"].as_str().unwrap().contains("28P01"),
        "{refused}"
    );
    gw.shutdown().await;
}
