/** Loaded before every test file (bunfig.toml): quiet logs, and the shared PostgreSQL stopped after the last file. */
import { afterAll } from "bun:test";
import { configureLogger } from "../../src/lib/log.ts";
import { stopSharedServices } from "./services.ts";

configureLogger(process.env.TEST_LOG_LEVEL ?? "warn", true);
afterAll(stopSharedServices);
