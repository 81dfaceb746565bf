// Shared fixtures: the demo users, a USERS_FILE writer and valid production settings.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TEST_JWT_SECRET } from './server.mjs';

/** Built-in development users (README / PRODUCT): username -> expected identity. */
export const DEMO_USERS = {
  alice: { password: 'alice123', id: '1', name: 'Alice Admin', role: 'admin', groups: ['staff', 'ops'], permissions: ['encrypted-channels'] },
  bob: { password: 'bob123', id: '2', name: 'Bob Builder', role: 'user', groups: ['staff'] },
  carol: { password: 'carol123', id: '3', name: 'Carol Moderator', role: 'moderator', groups: ['support'] },
};

/** bcrypt (cost 10, golang.org/x/crypto/bcrypt) of FILE_USER_PASSWORD. */
export const FILE_USER_PASSWORD = 's3cret-pass';
export const FILE_USER_HASH = '$2a$10$MUeFdk3xFCzVnNmuYwnJue2/27ppemlMCpbYysQPQ3P7ttiKOfSfW';

/** A user that exists only in USERS_FILE. */
export const FILE_USER = {
  username: 'dave',
  password_bcrypt: FILE_USER_HASH,
  id: 'u-42',
  name: 'Dave Data',
  email: 'dave@example.test',
  role: 'user',
  groups: ['data', 'staff'],
  permissions: ['encrypted-channels'],
};

/** writeTemp writes `content` to a fresh temporary file and returns its absolute path. */
export function writeTemp(name, content) {
  const path = join(mkdtempSync(join(tmpdir(), 'jetsocket-e2e-')), name);
  writeFileSync(path, content);
  return path;
}

/** writeUsersFile writes a USERS_FILE and returns its path. */
export const writeUsersFile = (users = [FILE_USER]) => writeTemp('users.json', JSON.stringify(users));

/**
 * productionEnv returns a complete, valid production configuration, so a test that breaks one
 * variable knows the refusal is about that variable.
 */
export function productionEnv() {
  return {
    APP_ENV: 'production',
    JWT_SECRET: TEST_JWT_SECRET,
    USERS_FILE: writeUsersFile(),
    ALLOWED_ORIGINS: 'https://app.example',
    APP_ID: '1001',
    APP_KEY: 'e2e-app-key',
    APP_SECRET: 'e2e-app-secret-0123456789abcdef0123456789',
    ENCRYPTION_MASTER_KEY: randomBytes(32).toString('base64'),
  };
}
