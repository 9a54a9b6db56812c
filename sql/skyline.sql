-- Skyline SQL schema for MySQL/MariaDB (InnoDB, utf8mb4).
-- GENERATED from skyline/db/models.py by `python -m skyline.db.ddl > sql/skyline.sql`:
-- do not edit by hand.  Times are UTC epoch seconds (BIGINT).
-- A database created from this file is at migration revision 0006;
-- `skyline db upgrade` creates the same schema in an empty database.

CREATE TABLE features (
	id INTEGER NOT NULL,
	name VARCHAR(255) NOT NULL,
	CONSTRAINT pk_features PRIMARY KEY (id),
	CONSTRAINT uq_features_name UNIQUE (name)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE flux_keys (
	id INTEGER NOT NULL AUTO_INCREMENT,
	key_hash VARCHAR(128) NOT NULL,
	namespace VARCHAR(1024) NOT NULL,
	description VARCHAR(255) NOT NULL,
	created_at BIGINT NOT NULL,
	revoked_at BIGINT,
	CONSTRAINT pk_flux_keys PRIMARY KEY (id),
	CONSTRAINT uq_flux_keys_key_hash UNIQUE (key_hash)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE metrics (
	id INTEGER NOT NULL AUTO_INCREMENT,
	name VARCHAR(1024) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	created_at BIGINT NOT NULL,
	inactive BOOL NOT NULL DEFAULT 0,
	inactive_at BIGINT,
	ionosphere_enabled BOOL NOT NULL DEFAULT 0,
	learn_full_duration_days INTEGER NOT NULL DEFAULT 30,
	learn_valid_ts_older_than INTEGER NOT NULL DEFAULT 3661,
	max_generations INTEGER NOT NULL DEFAULT 5,
	max_percent_diff_from_origin DOUBLE NOT NULL DEFAULT 7,
	CONSTRAINT pk_metrics PRIMARY KEY (id),
	CONSTRAINT uq_metrics_name UNIQUE (name)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE users (
	id INTEGER NOT NULL AUTO_INCREMENT,
	username VARCHAR(255) NOT NULL,
	password_hash VARCHAR(255) NOT NULL,
	`role` VARCHAR(16) NOT NULL,
	created_at BIGINT NOT NULL,
	disabled BOOL NOT NULL DEFAULT 0,
	CONSTRAINT pk_users PRIMARY KEY (id),
	CONSTRAINT ck_users_role CHECK (role IN ('viewer', 'operator', 'admin')),
	CONSTRAINT uq_users_username UNIQUE (username)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE alert_mutes (
	id INTEGER NOT NULL AUTO_INCREMENT,
	pattern VARCHAR(1024) NOT NULL,
	until BIGINT NOT NULL,
	created_by INTEGER,
	reason TEXT,
	created_at BIGINT NOT NULL,
	CONSTRAINT pk_alert_mutes PRIMARY KEY (id),
	CONSTRAINT fk_alert_mutes_created_by_users FOREIGN KEY(created_by) REFERENCES users (id) ON DELETE SET NULL
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX ix_alert_mutes_created_by ON alert_mutes (created_by);

CREATE TABLE anomalies (
	id INTEGER NOT NULL AUTO_INCREMENT,
	metric_id INTEGER NOT NULL,
	timestamp BIGINT NOT NULL,
	value DOUBLE NOT NULL,
	full_duration INTEGER NOT NULL,
	source VARCHAR(32) NOT NULL,
	host VARCHAR(255) NOT NULL,
	algorithms_run JSON NOT NULL,
	triggered_algorithms JSON NOT NULL,
	scores JSON NOT NULL,
	verdict VARCHAR(32) NOT NULL,
	end_timestamp BIGINT,
	created_at BIGINT NOT NULL,
	event_id VARCHAR(128) NOT NULL,
	CONSTRAINT pk_anomalies PRIMARY KEY (id),
	CONSTRAINT fk_anomalies_metric_id_metrics FOREIGN KEY(metric_id) REFERENCES metrics (id),
	CONSTRAINT uq_anomalies_event_id UNIQUE (event_id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX ix_anomalies_metric_id_timestamp ON anomalies (metric_id, timestamp);
CREATE INDEX ix_anomalies_timestamp ON anomalies (timestamp);

CREATE TABLE api_tokens (
	id INTEGER NOT NULL AUTO_INCREMENT,
	user_id INTEGER NOT NULL,
	name VARCHAR(255) NOT NULL,
	token_hash VARCHAR(128) NOT NULL,
	created_at BIGINT NOT NULL,
	last_used_at BIGINT,
	revoked_at BIGINT,
	CONSTRAINT pk_api_tokens PRIMARY KEY (id),
	CONSTRAINT fk_api_tokens_user_id_users FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE,
	CONSTRAINT uq_api_tokens_token_hash UNIQUE (token_hash)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX ix_api_tokens_user_id ON api_tokens (user_id);

CREATE TABLE audit_log (
	id INTEGER NOT NULL AUTO_INCREMENT,
	created_at BIGINT NOT NULL,
	actor_id INTEGER,
	actor VARCHAR(64) NOT NULL,
	action VARCHAR(64) NOT NULL,
	target VARCHAR(255) NOT NULL,
	detail TEXT,
	address VARCHAR(64),
	CONSTRAINT pk_audit_log PRIMARY KEY (id),
	CONSTRAINT fk_audit_log_actor_id_users FOREIGN KEY(actor_id) REFERENCES users (id) ON DELETE SET NULL
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX ix_audit_log_actor_id ON audit_log (actor_id);
CREATE INDEX ix_audit_log_created_at ON audit_log (created_at);

CREATE TABLE learn_windows (
	event_id VARCHAR(128) NOT NULL,
	full_duration INTEGER NOT NULL,
	metric_id INTEGER NOT NULL,
	timestamp BIGINT NOT NULL,
	points MEDIUMBLOB NOT NULL,
	CONSTRAINT pk_learn_windows PRIMARY KEY (event_id, full_duration),
	CONSTRAINT fk_learn_windows_metric_id_metrics FOREIGN KEY(metric_id) REFERENCES metrics (id) ON DELETE CASCADE
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX ix_learn_windows_metric_id ON learn_windows (metric_id);
CREATE INDEX ix_learn_windows_timestamp ON learn_windows (timestamp);

CREATE TABLE metric_labels (
	metric_id INTEGER NOT NULL,
	name VARCHAR(128) NOT NULL,
	value VARCHAR(512) NOT NULL,
	CONSTRAINT pk_metric_labels PRIMARY KEY (metric_id, name),
	CONSTRAINT fk_metric_labels_metric_id_metrics FOREIGN KEY(metric_id) REFERENCES metrics (id) ON DELETE CASCADE
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX ix_metric_labels_name_value ON metric_labels (name, value);

CREATE TABLE alert_log (
	id INTEGER NOT NULL AUTO_INCREMENT,
	event_id VARCHAR(255) NOT NULL,
	anomaly_id INTEGER,
	metric_id INTEGER NOT NULL,
	channel VARCHAR(64) NOT NULL,
	rule_pattern VARCHAR(1024) NOT NULL,
	attempt INTEGER NOT NULL DEFAULT 1,
	status VARCHAR(16) NOT NULL,
	error TEXT,
	created_at BIGINT NOT NULL,
	delivered_at BIGINT,
	CONSTRAINT pk_alert_log PRIMARY KEY (id),
	CONSTRAINT fk_alert_log_anomaly_id_anomalies FOREIGN KEY(anomaly_id) REFERENCES anomalies (id) ON DELETE SET NULL,
	CONSTRAINT fk_alert_log_metric_id_metrics FOREIGN KEY(metric_id) REFERENCES metrics (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX ix_alert_log_anomaly_id ON alert_log (anomaly_id);
CREATE INDEX ix_alert_log_event_id ON alert_log (event_id);
CREATE INDEX ix_alert_log_metric_id ON alert_log (metric_id);

CREATE TABLE anomaly_verdicts (
	id INTEGER NOT NULL AUTO_INCREMENT,
	anomaly_id INTEGER NOT NULL,
	stage VARCHAR(32) NOT NULL,
	verdict VARCHAR(32) NOT NULL,
	reason TEXT,
	detail JSON,
	created_at BIGINT NOT NULL,
	CONSTRAINT pk_anomaly_verdicts PRIMARY KEY (id),
	CONSTRAINT fk_anomaly_verdicts_anomaly_id_anomalies FOREIGN KEY(anomaly_id) REFERENCES anomalies (id) ON DELETE CASCADE
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX ix_anomaly_verdicts_anomaly_id ON anomaly_verdicts (anomaly_id);

CREATE TABLE correlations (
	id INTEGER NOT NULL AUTO_INCREMENT,
	anomaly_id INTEGER NOT NULL,
	metric_id INTEGER NOT NULL,
	coefficient DOUBLE NOT NULL,
	shifted INTEGER NOT NULL DEFAULT 0,
	shifted_coefficient DOUBLE NOT NULL,
	CONSTRAINT pk_correlations PRIMARY KEY (id),
	CONSTRAINT uq_correlations_anomaly_id_metric_id UNIQUE (anomaly_id, metric_id),
	CONSTRAINT fk_correlations_anomaly_id_anomalies FOREIGN KEY(anomaly_id) REFERENCES anomalies (id) ON DELETE CASCADE,
	CONSTRAINT fk_correlations_metric_id_metrics FOREIGN KEY(metric_id) REFERENCES metrics (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX ix_correlations_metric_id ON correlations (metric_id);

CREATE TABLE features_profiles (
	id INTEGER NOT NULL AUTO_INCREMENT,
	metric_id INTEGER NOT NULL,
	anomaly_id INTEGER,
	anomaly_timestamp BIGINT NOT NULL,
	full_duration INTEGER NOT NULL,
	resolution INTEGER NOT NULL,
	enabled BOOL NOT NULL DEFAULT 1,
	deleted BOOL NOT NULL DEFAULT 0,
	tsfresh_version VARCHAR(32) NOT NULL,
	calc_time DOUBLE NOT NULL,
	features_count INTEGER NOT NULL,
	features_sum DOUBLE NOT NULL,
	parent_id INTEGER,
	generation INTEGER NOT NULL DEFAULT 0,
	matched_count INTEGER NOT NULL DEFAULT 0,
	last_matched BIGINT,
	checked_count INTEGER NOT NULL DEFAULT 0,
	last_checked BIGINT,
	motif_matched_count INTEGER NOT NULL DEFAULT 0,
	motif_last_matched BIGINT,
	validated BOOL NOT NULL DEFAULT 0,
	learn BOOL NOT NULL DEFAULT 0,
	label VARCHAR(255),
	user_id INTEGER,
	created_at BIGINT NOT NULL,
	CONSTRAINT pk_features_profiles PRIMARY KEY (id),
	CONSTRAINT fk_features_profiles_metric_id_metrics FOREIGN KEY(metric_id) REFERENCES metrics (id),
	CONSTRAINT fk_features_profiles_anomaly_id_anomalies FOREIGN KEY(anomaly_id) REFERENCES anomalies (id) ON DELETE SET NULL,
	CONSTRAINT fk_features_profiles_parent_id_features_profiles FOREIGN KEY(parent_id) REFERENCES features_profiles (id) ON DELETE SET NULL,
	CONSTRAINT fk_features_profiles_user_id_users FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE SET NULL
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX ix_features_profiles_anomaly_id ON features_profiles (anomaly_id);
CREATE INDEX ix_features_profiles_metric_id ON features_profiles (metric_id);
CREATE INDEX ix_features_profiles_parent_id ON features_profiles (parent_id);
CREATE INDEX ix_features_profiles_user_id ON features_profiles (user_id);

CREATE TABLE labels (
	id INTEGER NOT NULL AUTO_INCREMENT,
	anomaly_id INTEGER NOT NULL,
	label VARCHAR(64) NOT NULL,
	user_id INTEGER,
	note TEXT,
	created_at BIGINT NOT NULL,
	CONSTRAINT pk_labels PRIMARY KEY (id),
	CONSTRAINT fk_labels_anomaly_id_anomalies FOREIGN KEY(anomaly_id) REFERENCES anomalies (id) ON DELETE CASCADE,
	CONSTRAINT fk_labels_user_id_users FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE SET NULL
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX ix_labels_anomaly_id ON labels (anomaly_id);
CREATE INDEX ix_labels_user_id ON labels (user_id);

CREATE TABLE learn_evaluated (
	anomaly_id INTEGER NOT NULL,
	anomaly_timestamp BIGINT NOT NULL,
	evaluated_at BIGINT NOT NULL,
	CONSTRAINT pk_learn_evaluated PRIMARY KEY (anomaly_id),
	CONSTRAINT fk_learn_evaluated_anomaly_id_anomalies FOREIGN KEY(anomaly_id) REFERENCES anomalies (id) ON DELETE CASCADE
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX ix_learn_evaluated_anomaly_timestamp ON learn_evaluated (anomaly_timestamp);

CREATE TABLE learn_origin_features (
	profile_id INTEGER NOT NULL,
	duration INTEGER NOT NULL,
	feature_id INTEGER NOT NULL,
	value DOUBLE NOT NULL,
	CONSTRAINT pk_learn_origin_features PRIMARY KEY (profile_id, duration, feature_id),
	CONSTRAINT fk_learn_origin_features_profile_id_features_profiles FOREIGN KEY(profile_id) REFERENCES features_profiles (id) ON DELETE CASCADE,
	CONSTRAINT fk_learn_origin_features_feature_id_features FOREIGN KEY(feature_id) REFERENCES features (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX ix_learn_origin_features_feature_id ON learn_origin_features (feature_id);

CREATE TABLE motifs (
	id INTEGER NOT NULL AUTO_INCREMENT,
	profile_id INTEGER NOT NULL,
	start_index INTEGER NOT NULL,
	size INTEGER NOT NULL,
	distance_max DOUBLE,
	created_at BIGINT NOT NULL,
	CONSTRAINT pk_motifs PRIMARY KEY (id),
	CONSTRAINT uq_motifs_profile_id_start_index_size UNIQUE (profile_id, start_index, size),
	CONSTRAINT fk_motifs_profile_id_features_profiles FOREIGN KEY(profile_id) REFERENCES features_profiles (id) ON DELETE CASCADE
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE profile_features (
	profile_id INTEGER NOT NULL,
	feature_id INTEGER NOT NULL,
	value DOUBLE NOT NULL,
	CONSTRAINT pk_profile_features PRIMARY KEY (profile_id, feature_id),
	CONSTRAINT fk_profile_features_profile_id_features_profiles FOREIGN KEY(profile_id) REFERENCES features_profiles (id) ON DELETE CASCADE,
	CONSTRAINT fk_profile_features_feature_id_features FOREIGN KEY(feature_id) REFERENCES features (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX ix_profile_features_feature_id ON profile_features (feature_id);

CREATE TABLE profile_matches (
	id INTEGER NOT NULL AUTO_INCREMENT,
	profile_id INTEGER NOT NULL,
	anomaly_id INTEGER,
	event_id VARCHAR(128),
	metric_timestamp BIGINT NOT NULL,
	match_type VARCHAR(16) NOT NULL,
	distance DOUBLE,
	features_sum DOUBLE,
	common_features_count INTEGER,
	validated BOOL NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	CONSTRAINT pk_profile_matches PRIMARY KEY (id),
	CONSTRAINT ck_profile_matches_match_type CHECK (match_type IN ('features', 'motif')),
	CONSTRAINT fk_profile_matches_profile_id_features_profiles FOREIGN KEY(profile_id) REFERENCES features_profiles (id) ON DELETE CASCADE,
	CONSTRAINT fk_profile_matches_anomaly_id_anomalies FOREIGN KEY(anomaly_id) REFERENCES anomalies (id) ON DELETE SET NULL
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX ix_profile_matches_anomaly_id ON profile_matches (anomaly_id);
CREATE INDEX ix_profile_matches_event_id ON profile_matches (event_id);
CREATE INDEX ix_profile_matches_profile_id ON profile_matches (profile_id);

CREATE TABLE profile_series (
	profile_id INTEGER NOT NULL,
	timestamp BIGINT NOT NULL,
	value DOUBLE NOT NULL,
	CONSTRAINT pk_profile_series PRIMARY KEY (profile_id, timestamp),
	CONSTRAINT fk_profile_series_profile_id_features_profiles FOREIGN KEY(profile_id) REFERENCES features_profiles (id) ON DELETE CASCADE
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL,
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
INSERT INTO alembic_version (version_num) VALUES ('0006');
