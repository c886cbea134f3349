import test from 'ava';
import { heldBackCallTests } from './support/held-back-calls.js';

heldBackCallTests(test, { partitioned: false });
