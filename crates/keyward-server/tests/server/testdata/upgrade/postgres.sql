--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: secret_field_count(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.secret_field_count() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE secrets SET field_count = (SELECT count(*) FROM json_object_keys(NEW.field_versions::json))
    WHERE id = NEW.secret_id AND current_version = NEW.version;
    RETURN NULL;
END;
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: _sqlx_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public._sqlx_migrations (
    version bigint NOT NULL,
    description text NOT NULL,
    installed_on timestamp with time zone DEFAULT now() NOT NULL,
    success boolean NOT NULL,
    checksum bytea NOT NULL,
    execution_time bigint NOT NULL
);


--
-- Name: audit_head; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_head (
    id bigint NOT NULL,
    seq bigint NOT NULL,
    hash bytea NOT NULL
);


--
-- Name: audit_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_log (
    seq bigint NOT NULL,
    entry text NOT NULL,
    hash bytea NOT NULL
);


--
-- Name: kek_checks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.kek_checks (
    tag text NOT NULL,
    check_value bytea NOT NULL
);


--
-- Name: key_jobs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.key_jobs (
    id text NOT NULL,
    kind text NOT NULL,
    mount_id text,
    mount_path text,
    status text NOT NULL,
    total bigint NOT NULL,
    done bigint NOT NULL,
    cursor_secret text NOT NULL,
    cursor_version bigint NOT NULL,
    owner text NOT NULL,
    started_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    error text NOT NULL
);


--
-- Name: mounts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.mounts (
    id text NOT NULL,
    path text NOT NULL,
    kind text NOT NULL,
    created_at bigint NOT NULL,
    config text NOT NULL
);


--
-- Name: policies; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.policies (
    name text NOT NULL,
    rules text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    hcl text
);


--
-- Name: proxy_routes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.proxy_routes (
    name text NOT NULL,
    route text NOT NULL
);


--
-- Name: secret_versions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.secret_versions (
    secret_id text NOT NULL,
    version bigint NOT NULL,
    blob bytea,
    created_at bigint NOT NULL,
    deletion_time bigint,
    destroyed bigint NOT NULL,
    created_by text NOT NULL,
    field_versions text NOT NULL,
    dek_version bigint
);


--
-- Name: secrets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.secrets (
    id text NOT NULL,
    mount_id text NOT NULL,
    path text NOT NULL COLLATE pg_catalog."C",
    current_version bigint NOT NULL,
    oldest_version bigint NOT NULL,
    max_versions bigint NOT NULL,
    cas_required bigint NOT NULL,
    custom_metadata text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    delete_version_after bigint NOT NULL,
    field_count bigint DEFAULT 0 NOT NULL
);


--
-- Name: system; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.system (
    key text NOT NULL,
    value text NOT NULL
);


--
-- Name: tokens; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tokens (
    accessor text NOT NULL,
    digest text NOT NULL,
    policies text NOT NULL,
    parent_accessor text,
    display_name text NOT NULL,
    created_at bigint NOT NULL,
    ttl_secs bigint NOT NULL,
    expires_at bigint,
    last_used bigint,
    revoked bigint NOT NULL,
    allowed_cidrs text NOT NULL,
    rate_limit text
);


--
-- Name: transit_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.transit_keys (
    id text NOT NULL,
    mount_id text NOT NULL,
    name text NOT NULL COLLATE pg_catalog."C",
    config text NOT NULL
);


--
-- Name: wrapped_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.wrapped_keys (
    domain text NOT NULL,
    owner text NOT NULL,
    version bigint NOT NULL,
    kek_tag text NOT NULL,
    wrapped bytea NOT NULL,
    created_at bigint NOT NULL
);


--
-- Data for Name: _sqlx_migrations; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public._sqlx_migrations VALUES (1, 'init', '2026-12-04 16:16:20.025801+00', true, '\x28278d4195685c03e18ad965b1b5f995aec968dad997f80c4f77e96abfbc486219ef541268935903e91fa708589e5224', 19670460);
INSERT INTO public._sqlx_migrations VALUES (2, 'vault', '2026-12-04 16:16:20.046166+00', true, '\x30fd0dae94eaf4cc818f0e7ae2870df62f1362565bbbb83b0319da01e3fbbbb4016c7e9cc2e8d6ebbeb2836b77a04f14', 3223700);
INSERT INTO public._sqlx_migrations VALUES (3, 'proxy', '2026-12-04 16:16:20.049795+00', true, '\x5b70ed246e4f43769047e37695324ab3fcc5b350c0c48d33d064c455938b836cd60deade41b9ce2b49d22e8fa2362183', 2593851);
INSERT INTO public._sqlx_migrations VALUES (4, 'secret field count', '2026-12-04 16:16:20.052751+00', true, '\x04687434378fea945fb149c00b9940be732bf6795da84bc203a578afaeeef6a842c6abb890a3d6d37609b2c93070a8a9', 2565617);
INSERT INTO public._sqlx_migrations VALUES (7, 'drop secret versions dek index', '2026-12-04 16:16:20.055688+00', true, '\xbd7d168321778f28282a03bafe230ffde64afd28c7070b83c71d42bc30566063615461a923fe2f8cb713203584c21a26', 1228733);
INSERT INTO public._sqlx_migrations VALUES (8, 'token rate limit', '2026-12-04 16:16:20.057332+00', true, '\xe6de70d5e1a34fd6064fc04cd87ba078e905fe2f1478e1950b5a80b0f900324b1f6f6e05ea52ee99dad3c13cb1480972', 723187);


--
-- Data for Name: audit_head; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.audit_head VALUES (1, 18, '\x22c06ffc202088089b4b0d8f4614ceac886fc416ec4b502b8a8cb077b2087d14');


--
-- Data for Name: audit_log; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.audit_log VALUES (1, '{"accessor":"","details":{},"error":"","fields":[],"mount":"","operation":"sys.init","path":"","remote_addr":"127.0.0.1","request_id":"22b8557b-6aa0-4be8-af7c-1add1afbc237","seq":1,"status":200,"time":"2026-12-04T16:16:20.226808395Z","user_agent":"Python-urllib/3.11"}', '\x3a98779b9cdce2948a7f847f8e95108e2cc0ffb678e9ff1701fc444e728478f8');
INSERT INTO public.audit_log VALUES (2, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{},"error":"","fields":[],"mount":"app","operation":"mounts.create","path":"","remote_addr":"127.0.0.1","request_id":"47dfb2fd-ef84-4450-9dc8-41cdb3f5b266","seq":2,"status":200,"time":"2026-12-04T16:16:20.230971908Z","user_agent":"Python-urllib/3.11"}', '\x1c9caafb4557d9fbe7b02716486ac05b90485a559c3a2c4cd9026aeb7318a428');
INSERT INTO public.audit_log VALUES (3, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{},"error":"","fields":[],"mount":"transit","operation":"mounts.create","path":"","remote_addr":"127.0.0.1","request_id":"3767f029-730d-4976-a9c7-5c280157c940","seq":3,"status":200,"time":"2026-12-04T16:16:20.233431868Z","user_agent":"Python-urllib/3.11"}', '\xba7d5431e53232d1196b02715342aebbce840ecc34c7e1c8226314c584982a6f');
INSERT INTO public.audit_log VALUES (4, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{},"error":"","fields":["DB","STRIPE_KEY"],"mount":"app","operation":"secrets.set","path":"prod","remote_addr":"127.0.0.1","request_id":"8cbe2b98-1746-4923-b889-c671d225f47f","seq":4,"status":200,"time":"2026-12-04T16:16:20.235973076Z","user_agent":"Python-urllib/3.11"}', '\x75e7dee8c37331245a4852eda4f20591f4204cd84f475932f48563c7a2084f34');
INSERT INTO public.audit_log VALUES (5, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{},"error":"","fields":["STRIPE_KEY"],"mount":"app","operation":"secrets.set","path":"prod","remote_addr":"127.0.0.1","request_id":"b85f3dd4-6d84-42ab-9956-fc8b1d130adb","seq":5,"status":200,"time":"2026-12-04T16:16:20.24165905Z","user_agent":"Python-urllib/3.11"}', '\x18e8df0b8eb742994cd9dfd3183689b20ea52fdb224b6da1541b3b35620adbd0');
INSERT INTO public.audit_log VALUES (6, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{},"error":"","fields":["DB"],"mount":"app","operation":"secrets.set","path":"prod","remote_addr":"127.0.0.1","request_id":"c26dbf73-e49f-4256-87bb-bd800130cd23","seq":6,"status":200,"time":"2026-12-04T16:16:20.245390212Z","user_agent":"Python-urllib/3.11"}', '\xe76dc6f49cd47587c5db1d0823d55f1f8a2e8d7236f77e4b42ca35090dddf78f');
INSERT INTO public.audit_log VALUES (7, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{},"error":"","fields":["STRIPE_KEY"],"mount":"app","operation":"secrets.set","path":"dev","remote_addr":"127.0.0.1","request_id":"15f99923-7334-42ee-a089-ac56700db7b4","seq":7,"status":200,"time":"2026-12-04T16:16:20.249935935Z","user_agent":"Python-urllib/3.11"}', '\xa6558102e38e878b6736393b8d5c0c265835579f9abb1789b56b6f9df6a38998');
INSERT INTO public.audit_log VALUES (8, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{},"error":"","fields":[],"mount":"","operation":"policies.write","path":"reader","remote_addr":"127.0.0.1","request_id":"26612daf-7f48-4dae-8069-a7a9668d3401","seq":8,"status":200,"time":"2026-12-04T16:16:20.252358966Z","user_agent":"Python-urllib/3.11"}', '\x03b56616bebedc25b609aa84cacbcb8a188a350c384a2359b10ad4f621a08219');
INSERT INTO public.audit_log VALUES (9, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{},"error":"","fields":[],"mount":"","operation":"policies.write","path":"gone","remote_addr":"127.0.0.1","request_id":"8c685a39-4a45-40f9-8970-cabc348a9fb1","seq":9,"status":200,"time":"2026-12-04T16:16:20.254434328Z","user_agent":"Python-urllib/3.11"}', '\x03cc55770840750e918fb728c1f5a6943d1bea763356ab6fd2ef49ada4036861');
INSERT INTO public.audit_log VALUES (10, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{},"error":"","fields":[],"mount":"","operation":"policies.write","path":"minter","remote_addr":"127.0.0.1","request_id":"e14d34af-794c-4b2f-b029-5f3a9e598f00","seq":10,"status":200,"time":"2026-12-04T16:16:20.256306505Z","user_agent":"Python-urllib/3.11"}', '\x0b29bc8a93915bc1a14307a802988b00a1f0dc1c8f64a984e656c9a27a89953e');
INSERT INTO public.audit_log VALUES (11, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{"created_accessor":"acc_kNx6G2H6T7JbyixEsv5JiKrI","policies":["reader","default"]},"error":"","fields":[],"mount":"","operation":"tokens.create","path":"","remote_addr":"127.0.0.1","request_id":"388c3036-b2e9-4714-8e7f-8a53db3809a2","seq":11,"status":200,"time":"2026-12-04T16:16:20.258009697Z","user_agent":"Python-urllib/3.11"}', '\xb291fb63427ebbed57dcd9df595d76a73c6d4e81ffe2c5f2070ce8a67f3e3da8');
INSERT INTO public.audit_log VALUES (12, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{"created_accessor":"acc_35XtwbmEOAhGwlVEp8nvW71F","policies":["reader","gone","default"]},"error":"","fields":[],"mount":"","operation":"tokens.create","path":"","remote_addr":"127.0.0.1","request_id":"9e586a8b-e1eb-4ead-b259-2e292e656d12","seq":12,"status":200,"time":"2026-12-04T16:16:20.260336998Z","user_agent":"Python-urllib/3.11"}', '\x88c79526eba3512ca004441082fa0b9112a28a9bb8bd32737dd644cdc3f44585');
INSERT INTO public.audit_log VALUES (13, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{"created_accessor":"acc_vrqY8Qhzr2RlN1nTrv0DdYHq","policies":["minter","default"]},"error":"","fields":[],"mount":"","operation":"tokens.create","path":"","remote_addr":"127.0.0.1","request_id":"c8a7bc77-7f4a-4a3a-b646-bd36b548aefd","seq":13,"status":200,"time":"2026-12-04T16:16:20.262436664Z","user_agent":"Python-urllib/3.11"}', '\x5c7225139d6c5bb4da6ed658a60c0db1d1f0bb36ff9baa718a61110a727de1ec');
INSERT INTO public.audit_log VALUES (14, '{"accessor":"acc_vrqY8Qhzr2RlN1nTrv0DdYHq","details":{"created_accessor":"acc_Mrib2snoV4Eoh5cT3xRHBD6r","policies":["minter","default"]},"error":"","fields":[],"mount":"","operation":"tokens.create","path":"","remote_addr":"127.0.0.1","request_id":"54cd5c3c-ec54-431c-91b8-adea4942ca1d","seq":14,"status":200,"time":"2026-12-04T16:16:20.264712449Z","user_agent":"Python-urllib/3.11"}', '\x5c2c78a422cc160f63e615ea5431c9d29fe573cf69f0146b1c1b097656b04eff');
INSERT INTO public.audit_log VALUES (15, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{},"error":"","fields":[],"mount":"","operation":"policies.delete","path":"gone","remote_addr":"127.0.0.1","request_id":"e40ae373-a71b-4bb5-a4cd-4809d4934348","seq":15,"status":200,"time":"2026-12-04T16:16:20.26729751Z","user_agent":"Python-urllib/3.11"}', '\xbbc7956349d8c7e4d604ad8c1b8e5f66e41a42ce8bb4c92690cbb16cffa0f6a0');
INSERT INTO public.audit_log VALUES (16, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{"secret":"app/prod","upstream":"https://api.stripe.com"},"error":"","fields":[],"mount":"","operation":"proxy.routes.create","path":"stripe","remote_addr":"127.0.0.1","request_id":"9e51bf76-40cf-4879-82e0-9d47a656949c","seq":16,"status":200,"time":"2026-12-04T16:16:20.269409799Z","user_agent":"Python-urllib/3.11"}', '\x1ac4080cc298fdd7d22dc4b21ee8a9055f40e7c214c29bb69fe129c46694b6e0');
INSERT INTO public.audit_log VALUES (17, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{},"error":"","fields":[],"mount":"transit","operation":"transit.keys.create","path":"fixture","remote_addr":"127.0.0.1","request_id":"25a1d361-57a6-42d2-b7f4-5b5d5d5a52fe","seq":17,"status":200,"time":"2026-12-04T16:16:20.271808859Z","user_agent":"Python-urllib/3.11"}', '\x94d3576c17fd3fe38c8aac411f5d8b0fa00ed289bbae04fbabcb29ee8dc56113');
INSERT INTO public.audit_log VALUES (18, '{"accessor":"acc_lrDkBEuM8lwQf2FTR0ZL4fcJ","details":{"key":"fixture","key_version":1},"error":"","fields":[],"mount":"transit","operation":"transit.encrypt","path":"fixture","remote_addr":"127.0.0.1","request_id":"8c569f80-2628-4b53-913e-ed8cead280ee","seq":18,"status":200,"time":"2026-12-04T16:16:20.274551959Z","user_agent":"Python-urllib/3.11"}', '\x22c06ffc202088089b4b0d8f4614ceac886fc416ec4b502b8a8cb077b2087d14');


--
-- Data for Name: kek_checks; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.kek_checks VALUES ('v1', '\xb134940ef6a61cd1d6d0c83e8a90c3b7b5d2a555649e8c68755b151864581d6c');


--
-- Data for Name: key_jobs; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: mounts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.mounts VALUES ('61bc47f8-d40a-472e-a886-96222f885a8b', 'app', 'kv', 1796400980231296232, '{}');
INSERT INTO public.mounts VALUES ('b891d811-fffc-4e6c-a825-7efc2cf60d74', 'transit', 'transit', 1796400980234292133, '{}');


--
-- Data for Name: policies; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.policies VALUES ('reader', '[{"path":"app/*","capabilities":["read","list","use"]}]', 1796400980252662522, 1796400980252662522, NULL);
INSERT INTO public.policies VALUES ('minter', '[{"path":"app/*","capabilities":["read"]},{"path":"sys/tokens","capabilities":["sudo"]}]', 1796400980256469270, 1796400980256469270, NULL);


--
-- Data for Name: proxy_routes; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.proxy_routes VALUES ('stripe', '{"name":"stripe","upstream":"https://api.stripe.com","mount":"app","path":"prod","inject":[{"kind":"bearer","field":"STRIPE_KEY"}],"rate_limit":null,"timeout_secs":10,"allow_insecure":false,"created_at":1796400980269416051,"updated_at":1796400980269416051}');


--
-- Data for Name: secret_versions; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.secret_versions VALUES ('c49b2927-fb36-4e8c-83bb-d5adfc77726a', 1, '\x4b570100000001a2e84a0aef8b4551116e40ef460e4f48f2789b86aabe779901b50d1774c27bb77a080b2a436044a37682249ad000be22edb75c4a5c7669967b4a65bd57fc9cc0bab7a9529fa0bbf7b64bf41b998af0815d41b7', 1796400980236724370, NULL, 0, 'acc_lrDkBEuM8lwQf2FTR0ZL4fcJ', '{"DB":{"v":1,"t":1796400980236724370},"STRIPE_KEY":{"v":1,"t":1796400980236724370}}', 1);
INSERT INTO public.secret_versions VALUES ('c49b2927-fb36-4e8c-83bb-d5adfc77726a', 2, '\x4b570100000001596da3a958ede5482f67e15130109f4053d96b72e49e8235b60e0df768e813a6f1705922e9172ef5b9bb3e9eee606309ad1139b705b9a52461bc6068a22aff53c20617cc99f9c2ab60edb9a51799312fabbfd8', 1796400980242567243, NULL, 0, 'acc_lrDkBEuM8lwQf2FTR0ZL4fcJ', '{"DB":{"v":1,"t":1796400980236724370},"STRIPE_KEY":{"v":2,"t":1796400980242567243}}', 1);
INSERT INTO public.secret_versions VALUES ('c49b2927-fb36-4e8c-83bb-d5adfc77726a', 3, '\x4b5701000000015b3ee4cfa45329ea96c229f78be884fc05ed60ad32f651c1de0bc19331a5c52487ab798ac5079033995a6da8df1aa3a3fe46e99ebe2ecd2acd73d5e3b490eb', 1796400980246382862, NULL, 0, 'acc_lrDkBEuM8lwQf2FTR0ZL4fcJ', '{"STRIPE_KEY":{"v":2,"t":1796400980242567243}}', 1);
INSERT INTO public.secret_versions VALUES ('c3651905-4e98-493a-981a-670a04185df3', 1, '\x4b570100000001ba4cd189c90b72bd8775a4b8b5228bb27424d002907f4bd84bbd7f71f40aa49a0e91182810db4b5082de466431c3caf7f69537562285d6ef53ceb72ef4dd8e0f', 1796400980250409257, NULL, 0, 'acc_lrDkBEuM8lwQf2FTR0ZL4fcJ', '{"STRIPE_KEY":{"v":1,"t":1796400980250409257}}', 1);


--
-- Data for Name: secrets; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.secrets VALUES ('c49b2927-fb36-4e8c-83bb-d5adfc77726a', '61bc47f8-d40a-472e-a886-96222f885a8b', 'prod', 3, 1, 0, 0, '{}', 1796400980236724370, 1796400980246382862, 0, 1);
INSERT INTO public.secrets VALUES ('c3651905-4e98-493a-981a-670a04185df3', '61bc47f8-d40a-472e-a886-96222f885a8b', 'dev', 1, 1, 0, 0, '{}', 1796400980250409257, 1796400980250409257, 0, 1);


--
-- Data for Name: system; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.system VALUES ('initialized', 'true');


--
-- Data for Name: tokens; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.tokens VALUES ('acc_lrDkBEuM8lwQf2FTR0ZL4fcJ', 'dd350fd86ab3dcce58350dc5a897f1edcf7bfbf960d8c768ac6f9f223e8aab1c', '["root"]', NULL, 'root', 1796400980227470810, 0, NULL, 1796400980232894103, 0, '[]', NULL);
INSERT INTO public.tokens VALUES ('acc_kNx6G2H6T7JbyixEsv5JiKrI', 'ad03e94fa2b47cf33a0d59332ad54c0d4a3196ef0a0529e2df66fd292a310695', '["reader","default"]', 'acc_lrDkBEuM8lwQf2FTR0ZL4fcJ', 'token', 1796400980258465375, 3153600000, 4950000980258465375, NULL, 0, '[]', NULL);
INSERT INTO public.tokens VALUES ('acc_35XtwbmEOAhGwlVEp8nvW71F', 'd87a8a4073a86a5a2b2dec47a4d34d2cfe3d4402e56339eea2346989418d1af8', '["reader","gone","default"]', 'acc_lrDkBEuM8lwQf2FTR0ZL4fcJ', 'token', 1796400980260631294, 3153600000, 4950000980260631294, NULL, 0, '[]', NULL);
INSERT INTO public.tokens VALUES ('acc_vrqY8Qhzr2RlN1nTrv0DdYHq', '57ef8b64de05076c11d5034a54d985de02ed0b047314567f7a508d1b7768b8a5', '["minter","default"]', 'acc_lrDkBEuM8lwQf2FTR0ZL4fcJ', 'token', 1796400980262707111, 3153600000, 4950000980262707111, 1796400980263961559, 0, '[]', NULL);
INSERT INTO public.tokens VALUES ('acc_Mrib2snoV4Eoh5cT3xRHBD6r', 'fea215252c83aef77fcb65d85f4fe743a50bb410e6d337ab215811a1af851b04', '["minter","default"]', 'acc_vrqY8Qhzr2RlN1nTrv0DdYHq', 'token', 1796400980264990096, 3121200000, 4917600980264990096, NULL, 0, '[]', NULL);


--
-- Data for Name: transit_keys; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.transit_keys VALUES ('4ceae36c-2cdd-4a2c-b3b2-14e7ce485cd4', 'b891d811-fffc-4e6c-a825-7efc2cf60d74', 'fixture', '{"type":"aes256-gcm96","latest_version":1,"min_decryption_version":1,"min_encryption_version":0,"deletion_allowed":false,"derived":false,"exportable":false,"allow_plaintext_backup":false,"auto_rotate_period_secs":0,"versions":{"1":1796400980}}');


--
-- Data for Name: wrapped_keys; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.wrapped_keys VALUES ('keyward/token-key', '00000000-0000-0000-0000-000000000000', 1, 'v1', '\x01b0b308b06385d39ea8f7d03ba86e504ba2e3c9330263cc701172fc8b64e8fa01d6dd9d0433e565ac1c6639492eb1bdc69c5e2964b902d4a692ccfd83', 1796400980227180592);
INSERT INTO public.wrapped_keys VALUES ('keyward/audit-key', '00000000-0000-0000-0000-000000000000', 1, 'v1', '\x0159b1e02243e675609d086a1b96fc878dc4ae10979e13a8f479c24bf86463f08277bd1e14aebe17002c66eb108982d88689b2e8e4ad05cabbcfcce29d', 1796400980227423368);
INSERT INTO public.wrapped_keys VALUES ('keyward/dek', '61bc47f8-d40a-472e-a886-96222f885a8b', 1, 'v1', '\x01adf793d39578b99ad9d387cfda572d02db0510ddcfb4ca1a2fcea8446978e945336f5a9ad8b9bbe9c49819800de687cac404bfcefc20ff53dbfdc651', 1796400980231473207);
INSERT INTO public.wrapped_keys VALUES ('keyward/transit-key', '4ceae36c-2cdd-4a2c-b3b2-14e7ce485cd4', 1, 'v1', '\x018e6bf762e53bd6884f6e89bce62a265691381c3787430a4c5cb0de30d9cefd21d0deac70b6d01c0693a28eb75fa479e1c15b71467ddf2096927eca90', 1796400980272320718);


--
-- Name: _sqlx_migrations _sqlx_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public._sqlx_migrations
    ADD CONSTRAINT _sqlx_migrations_pkey PRIMARY KEY (version);


--
-- Name: audit_head audit_head_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_head
    ADD CONSTRAINT audit_head_pkey PRIMARY KEY (id);


--
-- Name: audit_log audit_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (seq);


--
-- Name: kek_checks kek_checks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kek_checks
    ADD CONSTRAINT kek_checks_pkey PRIMARY KEY (tag);


--
-- Name: key_jobs key_jobs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.key_jobs
    ADD CONSTRAINT key_jobs_pkey PRIMARY KEY (id);


--
-- Name: mounts mounts_path_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.mounts
    ADD CONSTRAINT mounts_path_key UNIQUE (path);


--
-- Name: mounts mounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.mounts
    ADD CONSTRAINT mounts_pkey PRIMARY KEY (id);


--
-- Name: policies policies_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.policies
    ADD CONSTRAINT policies_pkey PRIMARY KEY (name);


--
-- Name: proxy_routes proxy_routes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.proxy_routes
    ADD CONSTRAINT proxy_routes_pkey PRIMARY KEY (name);


--
-- Name: secret_versions secret_versions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.secret_versions
    ADD CONSTRAINT secret_versions_pkey PRIMARY KEY (secret_id, version);


--
-- Name: secrets secrets_mount_id_path_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.secrets
    ADD CONSTRAINT secrets_mount_id_path_key UNIQUE (mount_id, path);


--
-- Name: secrets secrets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.secrets
    ADD CONSTRAINT secrets_pkey PRIMARY KEY (id);


--
-- Name: system system_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.system
    ADD CONSTRAINT system_pkey PRIMARY KEY (key);


--
-- Name: tokens tokens_digest_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tokens
    ADD CONSTRAINT tokens_digest_key UNIQUE (digest);


--
-- Name: tokens tokens_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tokens
    ADD CONSTRAINT tokens_pkey PRIMARY KEY (accessor);


--
-- Name: transit_keys transit_keys_mount_id_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transit_keys
    ADD CONSTRAINT transit_keys_mount_id_name_key UNIQUE (mount_id, name);


--
-- Name: transit_keys transit_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transit_keys
    ADD CONSTRAINT transit_keys_pkey PRIMARY KEY (id);


--
-- Name: wrapped_keys wrapped_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.wrapped_keys
    ADD CONSTRAINT wrapped_keys_pkey PRIMARY KEY (domain, owner, version);


--
-- Name: tokens_parent; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX tokens_parent ON public.tokens USING btree (parent_accessor);


--
-- Name: wrapped_keys_kek_tag; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX wrapped_keys_kek_tag ON public.wrapped_keys USING btree (kek_tag);


--
-- Name: secret_versions secret_field_count; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER secret_field_count AFTER INSERT ON public.secret_versions FOR EACH ROW EXECUTE FUNCTION public.secret_field_count();


--
-- Name: secret_versions secret_versions_secret_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.secret_versions
    ADD CONSTRAINT secret_versions_secret_id_fkey FOREIGN KEY (secret_id) REFERENCES public.secrets(id);


--
-- Name: secrets secrets_mount_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.secrets
    ADD CONSTRAINT secrets_mount_id_fkey FOREIGN KEY (mount_id) REFERENCES public.mounts(id);


--
-- Name: transit_keys transit_keys_mount_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transit_keys
    ADD CONSTRAINT transit_keys_mount_id_fkey FOREIGN KEY (mount_id) REFERENCES public.mounts(id);


--
-- PostgreSQL database dump complete
--


