import express from 'express';
import { DEMO_PAGE } from './demoPage';
import { demoWidgetPage } from './demoWidget';
import type { WidgetAssets } from './widgetAssets';

/** `/demo`: a plain page to try the core with the simulator (only mounted with WA_ENGINE=simulator). */
export function demoRouter(widgetAssets?: WidgetAssets): express.Router {
  const r = express.Router();
  if (widgetAssets) {
    r.get('/demo/widget', (_req, res) => {
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.setHeader('Cache-Control', 'no-store');
      res.send(demoWidgetPage(widgetAssets.url('standalone.js')));
    });
  }
  r.get('/demo', (_req, res) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.send(DEMO_PAGE);
  });
  return r;
}
