PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);
INSERT INTO _sqlx_migrations VALUES(1,'init','2026-12-04 16:16:19',1,X'c21fbccfcbfde31477ef8511c7039f17a9b9e237f84a3e8feb762776f8fa8028f06128368d7e952eaaab35fedb79f168',3134484);
INSERT INTO _sqlx_migrations VALUES(2,'vault','2026-12-04 16:16:19',1,X'53da3f869d9fd7c33d1236991d5761f0830a69017d7a504eed88995c838258ffc6fdd6ab9d15d0455b618f30b45a1ed3',588014);
INSERT INTO _sqlx_migrations VALUES(3,'proxy','2026-12-04 16:16:19',1,X'5b70ed246e4f43769047e37695324ab3fcc5b350c0c48d33d064c455938b836cd60deade41b9ce2b49d22e8fa2362183',392544);
INSERT INTO _sqlx_migrations VALUES(4,'audit head follows','2026-12-04 16:16:19',1,X'2c4b7c1ab97da70fb57083ed1ec12b48061e07b2467cf83b76c2ef34a1efabeb6fd4b965e7bd67ad4383d0757b8f7304',483574);
INSERT INTO _sqlx_migrations VALUES(5,'secret field count','2026-12-04 16:16:19',1,X'310c556261aac401abcc68a5e318acd1a8d2859f3252bf507e8ca3c99c0afabf69cabfc808b66192505bd23ff5581902',813808);
INSERT INTO _sqlx_migrations VALUES(6,'audit head set by appender','2026-12-04 16:16:19',1,X'6a07c80644379ca7cd6e7270c939c649385bc75d42692c1d4ee41d23e13028b10b9b445f22710796e8ea0f5b8355b7c1',497183);
INSERT INTO _sqlx_migrations VALUES(7,'drop secret versions dek index','2026-12-04 16:16:19',1,X'bd7d168321778f28282a03bafe230ffde64afd28c7070b83c71d42bc30566063615461a923fe2f8cb713203584c21a26',586723);
INSERT INTO _sqlx_migrations VALUES(8,'token rate limit','2026-12-04 16:16:19',1,X'e6de70d5e1a34fd6064fc04cd87ba078e905fe2f1478e1950b5a80b0f900324b1f6f6e05ea52ee99dad3c13cb1480972',606695);
CREATE TABLE system (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO system VALUES('initialized','true');
CREATE TABLE kek_checks (tag TEXT PRIMARY KEY, check_value BLOB NOT NULL);
INSERT INTO kek_checks VALUES('v1',X'b134940ef6a61cd1d6d0c83e8a90c3b7b5d2a555649e8c68755b151864581d6c');
CREATE TABLE wrapped_keys (
    domain TEXT NOT NULL,
    owner TEXT NOT NULL,
    version INTEGER NOT NULL,
    kek_tag TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (domain, owner, version)
);
INSERT INTO wrapped_keys VALUES('keyward/token-key','00000000-0000-0000-0000-000000000000',1,'v1',X'01658bd3f016f0e6d895f8272f352dc2a49ce2b352417704120f5306f8d24ac4d32823084d6b6d34e016ad5604fb30ffe37a068aa7208b1633f40fffb3',1796400979903489370);
INSERT INTO wrapped_keys VALUES('keyward/audit-key','00000000-0000-0000-0000-000000000000',1,'v1',X'01f5c81be9eb4f1ab206a87f5a5922cb732408549670edebf1b969a9e4c6ab59777a9f1fda4cc12ac51adf7f64438ebc10ca1a58320d9a28545346295b',1796400979903534699);
INSERT INTO wrapped_keys VALUES('keyward/dek','c775ac0b-aef3-4d82-b5c9-59a6c79c814f',1,'v1',X'01860ca7701c43a82f65b1c16ac33b75be9bfe9573e05c70d3548e8e1660a27ae8ef3b5f78e3656b9c3481f94fe26be0d422c074469e6ba102c02ffa7d',1796400979905582577);
INSERT INTO wrapped_keys VALUES('keyward/transit-key','27e9871c-9956-4f41-865a-7a7cb499968f',1,'v1',X'01003a81ed610dfe19bf4b27ddf7adb4132dc840a5b6ebcad650a658b56c90e9ee3b4bc36fbc0772c8736bdad91128c48ec6774c67d445c4f4da45a523',1796400979927973698);
CREATE TABLE mounts (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    config TEXT NOT NULL
);
INSERT INTO mounts VALUES('c775ac0b-aef3-4d82-b5c9-59a6c79c814f','app','kv',1796400979905528421,'{}');
INSERT INTO mounts VALUES('496ac169-4765-417e-ac3c-cd183f63ab60','transit','transit',1796400979907203223,'{}');
CREATE TABLE secrets (
    id TEXT PRIMARY KEY,
    mount_id TEXT NOT NULL REFERENCES mounts (id),
    path TEXT NOT NULL,
    current_version INTEGER NOT NULL,
    oldest_version INTEGER NOT NULL,
    max_versions INTEGER NOT NULL,
    cas_required INTEGER NOT NULL,
    custom_metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    delete_version_after INTEGER NOT NULL, field_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (mount_id, path)
);
INSERT INTO secrets VALUES('227eff79-191c-4bf7-8ded-c7662e0ed6d8','c775ac0b-aef3-4d82-b5c9-59a6c79c814f','prod',3,1,0,0,'{}',1796400979910987082,1796400979913504117,0,1);
INSERT INTO secrets VALUES('a4ee8031-c7dd-4fcb-a687-3fc35a761cc7','c775ac0b-aef3-4d82-b5c9-59a6c79c814f','dev',1,1,0,0,'{}',1796400979916919268,1796400979916919268,0,1);
CREATE TABLE secret_versions (
    secret_id TEXT NOT NULL REFERENCES secrets (id),
    version INTEGER NOT NULL,
    blob BLOB,
    created_at INTEGER NOT NULL,
    deletion_time INTEGER,
    destroyed INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    field_versions TEXT NOT NULL,
    -- The data-key version that sealed the blob (NULL once destroyed), for key status and pruning.
    dek_version INTEGER,
    PRIMARY KEY (secret_id, version)
);
INSERT INTO secret_versions VALUES('227eff79-191c-4bf7-8ded-c7662e0ed6d8',1,X'4b5701000000016bd01d7a3551e7c00b7e2f5927456f06361df30ae6b1b63e2bc3e3ac90c8635450ad9341366e0e2560ccffa120278e8ec0ffaed1395ad78ff23464c850663bbedd89f4164bb3a4b9fb325631a34a6248039fac',1796400979910987082,NULL,0,'acc_T8EBdJD1ES3gjWokQO0bYHXl','{"DB":{"v":1,"t":1796400979910987082},"STRIPE_KEY":{"v":1,"t":1796400979910987082}}',1);
INSERT INTO secret_versions VALUES('227eff79-191c-4bf7-8ded-c7662e0ed6d8',2,X'4b570100000001bbfe217195db14f51f23c0b4f23e4c03f34b9f51cc5eb70f6088ff4eb4fdc00652644a49f1ebb4b8a251fd94c2a0e40bdf61944b1e7a6c20d8f863dc0100848c61ba9618b370337ba50e75e8139870a99ee802',1796400979912155291,NULL,0,'acc_T8EBdJD1ES3gjWokQO0bYHXl','{"DB":{"v":1,"t":1796400979910987082},"STRIPE_KEY":{"v":2,"t":1796400979912155291}}',1);
INSERT INTO secret_versions VALUES('227eff79-191c-4bf7-8ded-c7662e0ed6d8',3,X'4b5701000000012a45c0a42c5371fb3549f359c1067a40f49294578792ead67b639c71d0c1d75d35439431ef6962272b6d4b56d688f231db8d8ccb67241de18ec15c5cca7d00',1796400979913504117,NULL,0,'acc_T8EBdJD1ES3gjWokQO0bYHXl','{"STRIPE_KEY":{"v":2,"t":1796400979912155291}}',1);
INSERT INTO secret_versions VALUES('a4ee8031-c7dd-4fcb-a687-3fc35a761cc7',1,X'4b57010000000133ee83ae9f2f794076d5bd47ca67887f32a5f73502b4d3c04dab70dce986b2d4dbad5a73b566b7e1accd130df8785faae6a430f46a547c9303ece3d60762ff91',1796400979916919268,NULL,0,'acc_T8EBdJD1ES3gjWokQO0bYHXl','{"STRIPE_KEY":{"v":1,"t":1796400979916919268}}',1);
CREATE TABLE tokens (
    accessor TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    policies TEXT NOT NULL,
    parent_accessor TEXT,
    display_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    ttl_secs INTEGER NOT NULL,
    expires_at INTEGER,
    last_used INTEGER,
    revoked INTEGER NOT NULL,
    allowed_cidrs TEXT NOT NULL
, rate_limit TEXT);
INSERT INTO tokens VALUES('acc_T8EBdJD1ES3gjWokQO0bYHXl','abde85b4ea3d8e2c77a8a1a89c777f0286ab827407c3e244e091a8b20e2b489a','["root"]',NULL,'root',1796400979903553417,0,NULL,1796400979904964330,0,'[]',NULL);
INSERT INTO tokens VALUES('acc_5aTiLtz4N1r5Bj3azfZhTKgI','5f0f3261ecb0afda8e13fccea1e4f332a1013c2f8f3e3983fc7ee095b4f172e7','["reader","default"]','acc_T8EBdJD1ES3gjWokQO0bYHXl','token',1796400979921268847,3153600000,4950000979921268847,NULL,0,'[]',NULL);
INSERT INTO tokens VALUES('acc_QawzFrrxahJwOceJkBY0TAxD','73370bef12915c9e8b947770e98f708646661760e960302ab5c2d228609a76b9','["reader","gone","default"]','acc_T8EBdJD1ES3gjWokQO0bYHXl','token',1796400979922322104,3153600000,4950000979922322104,NULL,0,'[]',NULL);
INSERT INTO tokens VALUES('acc_gYKH0M5fxO3MfO1VQrMM3slb','235788c0badea86594b36191af21aa622c02c1df04acf95a88f1123c3edabb3d','["minter","default"]','acc_T8EBdJD1ES3gjWokQO0bYHXl','token',1796400979923254458,3153600000,4950000979923254458,1796400979924144711,0,'[]',NULL);
INSERT INTO tokens VALUES('acc_pggqrT4fU6fDkJpSPwcYBqG3','2b369f04496c9a486c4bd281a010998fe73c7e74c5f4434daefd6527283ab05e','["minter","default"]','acc_gYKH0M5fxO3MfO1VQrMM3slb','token',1796400979924540275,3121200000,4917600979924540275,NULL,0,'[]',NULL);
CREATE TABLE policies (
    name TEXT PRIMARY KEY,
    rules TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
, hcl TEXT);
INSERT INTO policies VALUES('reader','[{"path":"app/*","capabilities":["read","list","use"]}]',1796400979917948189,1796400979917948189,NULL);
INSERT INTO policies VALUES('minter','[{"path":"app/*","capabilities":["read"]},{"path":"sys/tokens","capabilities":["sudo"]}]',1796400979920271213,1796400979920271213,NULL);
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    entry TEXT NOT NULL,
    hash BLOB NOT NULL
);
INSERT INTO audit_log VALUES(1,'{"accessor":"","details":{},"error":"","fields":[],"mount":"","operation":"sys.init","path":"","remote_addr":"127.0.0.1","request_id":"19e9a1fd-966d-4e33-8b55-d08100627918","seq":1,"status":200,"time":"2026-12-04T16:16:19.903036682Z","user_agent":"Python-urllib/3.11"}',X'0c3f120b0b39ee8ec43d5c3d00b4fdc1828f0d0564fae337d6e7f1a74ae7b1f6');
INSERT INTO audit_log VALUES(2,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{},"error":"","fields":[],"mount":"app","operation":"mounts.create","path":"","remote_addr":"127.0.0.1","request_id":"f8f9170a-3658-4909-91e9-cbf92b4a29d5","seq":2,"status":200,"time":"2026-12-04T16:16:19.905323936Z","user_agent":"Python-urllib/3.11"}',X'46ec506f4719837cf7f6d127dcb6ebfeefb4850d4c3fbc60e098a72b9fd31cbf');
INSERT INTO audit_log VALUES(3,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{},"error":"","fields":[],"mount":"transit","operation":"mounts.create","path":"","remote_addr":"127.0.0.1","request_id":"da95e04f-36de-44b3-9fb0-020b2e84e86f","seq":3,"status":200,"time":"2026-12-04T16:16:19.907125216Z","user_agent":"Python-urllib/3.11"}',X'b01f20c37d70c25fb2e05ddf9e16d1dc298022693a257e775af1a9586a43713d');
INSERT INTO audit_log VALUES(4,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{},"error":"","fields":["DB","STRIPE_KEY"],"mount":"app","operation":"secrets.set","path":"prod","remote_addr":"127.0.0.1","request_id":"43de2d16-b88b-43ca-8349-3d523a362018","seq":4,"status":200,"time":"2026-12-04T16:16:19.910347224Z","user_agent":"Python-urllib/3.11"}',X'1fa9b8fcc691879128ae2ba9fdc896d882121491d49e89fc134d86aac55e309e');
INSERT INTO audit_log VALUES(5,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{},"error":"","fields":["STRIPE_KEY"],"mount":"app","operation":"secrets.set","path":"prod","remote_addr":"127.0.0.1","request_id":"5d10b464-74d4-4d56-9c91-d6c6b536ded2","seq":5,"status":200,"time":"2026-12-04T16:16:19.912080644Z","user_agent":"Python-urllib/3.11"}',X'2fd92837ff3a01522a2d120829adc3929d0b76569591b655f0d854607c518fa5');
INSERT INTO audit_log VALUES(6,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{},"error":"","fields":["DB"],"mount":"app","operation":"secrets.set","path":"prod","remote_addr":"127.0.0.1","request_id":"77e043ac-0065-49ff-8d4a-5cf0d6a941a6","seq":6,"status":200,"time":"2026-12-04T16:16:19.913356515Z","user_agent":"Python-urllib/3.11"}',X'29aa0a3a2e4ee68c6d3aa35af7374ea38d7533f5431917e503a2c8d470827fa1');
INSERT INTO audit_log VALUES(7,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{},"error":"","fields":["STRIPE_KEY"],"mount":"app","operation":"secrets.set","path":"dev","remote_addr":"127.0.0.1","request_id":"a9274eb5-d8b7-4aef-8307-bef0b32d04fc","seq":7,"status":200,"time":"2026-12-04T16:16:19.914468939Z","user_agent":"Python-urllib/3.11"}',X'bec8bf990ac4118cc598f5934e12783acf6c9e7bcc7259119b3c84c16bf42c47');
INSERT INTO audit_log VALUES(8,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{},"error":"","fields":[],"mount":"","operation":"policies.write","path":"reader","remote_addr":"127.0.0.1","request_id":"c1c02933-d2c8-4e51-88c2-ff08cf06d8a1","seq":8,"status":200,"time":"2026-12-04T16:16:19.917901011Z","user_agent":"Python-urllib/3.11"}',X'215bd6aa6e82ffb8abe9c5e4d4c72d4b2240f7d6d7f9fb09b7f9aa1b7a4b7e0b');
INSERT INTO audit_log VALUES(9,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{},"error":"","fields":[],"mount":"","operation":"policies.write","path":"gone","remote_addr":"127.0.0.1","request_id":"34b51153-6729-4333-a3e1-571f548826d9","seq":9,"status":200,"time":"2026-12-04T16:16:19.919056602Z","user_agent":"Python-urllib/3.11"}',X'a1027bc7ad4cd445374b898dc1c0507e9116a86c65bfd43b0565065f780ba338');
INSERT INTO audit_log VALUES(10,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{},"error":"","fields":[],"mount":"","operation":"policies.write","path":"minter","remote_addr":"127.0.0.1","request_id":"fdce055d-6c35-4f5f-9606-0a8bc49dda0e","seq":10,"status":200,"time":"2026-12-04T16:16:19.920188943Z","user_agent":"Python-urllib/3.11"}',X'ca696f31b9360220d6c55a3069fbd9a92055aa30c1e139eb3654f5d0fb530526');
INSERT INTO audit_log VALUES(11,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{"created_accessor":"acc_5aTiLtz4N1r5Bj3azfZhTKgI","policies":["reader","default"]},"error":"","fields":[],"mount":"","operation":"tokens.create","path":"","remote_addr":"127.0.0.1","request_id":"54e75745-30d9-493c-8436-054e55ef31c3","seq":11,"status":200,"time":"2026-12-04T16:16:19.921135237Z","user_agent":"Python-urllib/3.11"}',X'1eb063ec6cfce50fa5588b1626db7b38ebbab6e2017558cc18e18901d4048b2a');
INSERT INTO audit_log VALUES(12,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{"created_accessor":"acc_QawzFrrxahJwOceJkBY0TAxD","policies":["reader","gone","default"]},"error":"","fields":[],"mount":"","operation":"tokens.create","path":"","remote_addr":"127.0.0.1","request_id":"3d66e427-6bfa-4b45-bce4-8d4e8484fbb9","seq":12,"status":200,"time":"2026-12-04T16:16:19.922102294Z","user_agent":"Python-urllib/3.11"}',X'd3078bc2eb8ada2c1693986d269b4323048b775cc2e429c0d205f261bda9318b');
INSERT INTO audit_log VALUES(13,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{"created_accessor":"acc_gYKH0M5fxO3MfO1VQrMM3slb","policies":["minter","default"]},"error":"","fields":[],"mount":"","operation":"tokens.create","path":"","remote_addr":"127.0.0.1","request_id":"743028f4-1352-4d34-bf29-156eb5367444","seq":13,"status":200,"time":"2026-12-04T16:16:19.923177567Z","user_agent":"Python-urllib/3.11"}',X'b051258c52dc2d9467a8666d964d49c014f4e90db39cf6f2aa20380bb69cbec8');
INSERT INTO audit_log VALUES(14,'{"accessor":"acc_gYKH0M5fxO3MfO1VQrMM3slb","details":{"created_accessor":"acc_pggqrT4fU6fDkJpSPwcYBqG3","policies":["minter","default"]},"error":"","fields":[],"mount":"","operation":"tokens.create","path":"","remote_addr":"127.0.0.1","request_id":"9b4ce5e4-e41b-4d93-a9b5-4649da6d9452","seq":14,"status":200,"time":"2026-12-04T16:16:19.924476873Z","user_agent":"Python-urllib/3.11"}',X'a6753d117e7a0eef1517ca2dcb64992f836ee92e03e989633d8665d99f2c528f');
INSERT INTO audit_log VALUES(15,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{},"error":"","fields":[],"mount":"","operation":"policies.delete","path":"gone","remote_addr":"127.0.0.1","request_id":"633037c4-a5b6-42a1-a12b-7919f78d79ea","seq":15,"status":200,"time":"2026-12-04T16:16:19.925551042Z","user_agent":"Python-urllib/3.11"}',X'4044337dd2b134b89428585196a4c6e409bd6b8b2d75d4975e906ea0f8024d3d');
INSERT INTO audit_log VALUES(16,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{"secret":"app/prod","upstream":"https://api.stripe.com"},"error":"","fields":[],"mount":"","operation":"proxy.routes.create","path":"stripe","remote_addr":"127.0.0.1","request_id":"ab31588b-e939-45ba-9b53-ecf72e190429","seq":16,"status":200,"time":"2026-12-04T16:16:19.926626286Z","user_agent":"Python-urllib/3.11"}',X'c3ac7ca719ceb7de2fc62ef55bdb6955e4c619271e83dc58f671d18dbe41d8b7');
INSERT INTO audit_log VALUES(17,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{},"error":"","fields":[],"mount":"transit","operation":"transit.keys.create","path":"fixture","remote_addr":"127.0.0.1","request_id":"67e32c7a-51bd-4af1-8ab3-9c2eae92b2df","seq":17,"status":200,"time":"2026-12-04T16:16:19.927815041Z","user_agent":"Python-urllib/3.11"}',X'7cf6b598a432dae40873439b0560b53e8f0495aad8d644c36d21a2a47580c548');
INSERT INTO audit_log VALUES(18,'{"accessor":"acc_T8EBdJD1ES3gjWokQO0bYHXl","details":{"key":"fixture","key_version":1},"error":"","fields":[],"mount":"transit","operation":"transit.encrypt","path":"fixture","remote_addr":"127.0.0.1","request_id":"2973505e-af90-41cc-9737-45f50e008aae","seq":18,"status":200,"time":"2026-12-04T16:16:19.929093669Z","user_agent":"Python-urllib/3.11"}',X'f71ed5b63379f4c7ab3dcd51b0738f940f4acd2484838d2bd2c2a65513f47355');
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL
);
INSERT INTO audit_head VALUES(1,18,X'f71ed5b63379f4c7ab3dcd51b0738f940f4acd2484838d2bd2c2a65513f47355');
CREATE TABLE key_jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    mount_id TEXT,
    mount_path TEXT,
    status TEXT NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL,
    cursor_secret TEXT NOT NULL,
    cursor_version INTEGER NOT NULL,
    owner TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    error TEXT NOT NULL
);
CREATE TABLE transit_keys (
    id TEXT PRIMARY KEY,
    mount_id TEXT NOT NULL REFERENCES mounts (id),
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    UNIQUE (mount_id, name)
);
INSERT INTO transit_keys VALUES('27e9871c-9956-4f41-865a-7a7cb499968f','496ac169-4765-417e-ac3c-cd183f63ab60','fixture','{"type":"aes256-gcm96","latest_version":1,"min_decryption_version":1,"min_encryption_version":0,"deletion_allowed":false,"derived":false,"exportable":false,"allow_plaintext_backup":false,"auto_rotate_period_secs":0,"versions":{"1":1796400979}}');
CREATE TABLE proxy_routes (
    name TEXT PRIMARY KEY,
    route TEXT NOT NULL
);
INSERT INTO proxy_routes VALUES('stripe','{"name":"stripe","upstream":"https://api.stripe.com","mount":"app","path":"prod","inject":[{"kind":"bearer","field":"STRIPE_KEY"}],"rate_limit":null,"timeout_secs":10,"allow_insecure":false,"created_at":1796400979926631113,"updated_at":1796400979926631113}');
CREATE INDEX wrapped_keys_kek_tag ON wrapped_keys (kek_tag);
CREATE INDEX tokens_parent ON tokens (parent_accessor);
CREATE TRIGGER secret_field_count AFTER INSERT ON secret_versions
BEGIN
    UPDATE secrets SET field_count = (SELECT count(*) FROM json_each(NEW.field_versions))
    WHERE id = NEW.secret_id AND current_version = NEW.version;
END;
COMMIT;
