import express from 'express';
import { DEMO_PAGE } from './demoPage';

/** `/demo`: a plain page to try the core with the simulator (only mounted with WA_ENGINE=simulator). */
export function demoRouter(): express.Router {
  const r = express.Router();
  r.get('/demo', (_req, res) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.send(DEMO_PAGE);
  });
  return r;
}
