<?php
/**
 * The plugin's REST routes: nonce and capability checks, consent, the real bridge behind them.
 *
 * @package KycBridge
 */

namespace KycBridge\Tests;

use WP_REST_Request;

/**
 * POST /kyc-bridge/v1/sessions and GET /kyc-bridge/v1/status.
 */
class RestTest extends TestCase {

	/**
	 * Consent answers.
	 *
	 * @param array $override Changes.
	 * @return array
	 */
	private function consent( $override = array() ) {
		return array_merge(
			array(
				'share_with_persona' => true,
				'persona_retention'  => true,
				'gdpr_processing'    => true,
				'text_version'       => self::fixtures()['consent_version'],
			),
			$override
		);
	}

	/**
	 * Call POST /sessions.
	 *
	 * @param array       $body  JSON body.
	 * @param string|null $nonce X-WP-Nonce (null: none).
	 * @return \WP_REST_Response
	 */
	private function post_session( $body, $nonce = null ) {
		$request = new WP_REST_Request( 'POST', '/kyc-bridge/v1/sessions' );
		$request->set_header( 'Content-Type', 'application/json' );
		$request->set_header( 'User-Agent', 'PHPUnit' );
		if ( null !== $nonce ) {
			$request->set_header( 'X-WP-Nonce', $nonce );
		}
		$request->set_body( wp_json_encode( $body ) );
		return rest_do_request( $request );
	}

	public function test_routes_are_registered() {
		$routes = rest_get_server()->get_routes();
		$this->assertArrayHasKey( '/kyc-bridge/v1/sessions', $routes );
		$this->assertArrayHasKey( '/kyc-bridge/v1/status', $routes );
	}

	public function test_without_nonce_is_refused() {
		$this->log_in( 'rest-no-nonce@example.test' );
		$response = $this->post_session( array( 'consent' => $this->consent() ) );
		$this->assertSame( 403, $response->get_status() );
		$this->assertSame( 'kycb_bad_nonce', $response->get_data()['code'] );
	}

	public function test_with_a_wrong_nonce_is_refused() {
		$this->log_in( 'rest-bad-nonce@example.test' );
		$response = $this->post_session( array( 'consent' => $this->consent() ), 'abc123' );
		$this->assertSame( 403, $response->get_status() );
	}

	public function test_logged_out_without_link_token_is_refused() {
		$response = $this->post_session( array( 'consent' => $this->consent() ), wp_create_nonce( 'wp_rest' ) );
		$this->assertSame( 401, $response->get_status() );
		$this->assertSame( 'kycb_login_required', $response->get_data()['code'] );
	}

	public function test_a_missing_consent_box_is_refused_with_its_name() {
		$this->log_in( 'rest-consent@example.test' );
		$response = $this->post_session(
			array(
				'user_type' => 'investor',
				'consent'   => $this->consent( array( 'persona_retention' => false ) ),
			),
			wp_create_nonce( 'wp_rest' )
		);
		$this->assertSame( 422, $response->get_status() );
		$this->assertSame( 'consent.persona_retention', $response->get_data()['data']['field'] );
	}

	public function test_unknown_user_type_is_refused() {
		$this->log_in( 'rest-type@example.test' );
		$response = $this->post_session(
			array(
				'user_type' => 'wizard',
				'consent'   => $this->consent(),
			),
			wp_create_nonce( 'wp_rest' )
		);
		$this->assertSame( 400, $response->get_status() );
	}

	public function test_logged_in_user_starts_a_session_at_the_bridge() {
		$email = 'rest-start@example.test';
		$id    = $this->log_in( $email );
		$response = $this->post_session(
			array(
				'user_type' => 'investor',
				'consent'   => $this->consent(),
			),
			wp_create_nonce( 'wp_rest' )
		);
		$this->assertSame( 201, $response->get_status(), wp_json_encode( $response->get_data() ) );
		$data = $response->get_data();
		$this->assertSame( 'embedded', $data['flow'] );
		$this->assertSame( self::fixtures()['templates']['investor'], $data['template_id'] );
		$this->assertStringStartsWith( 'kyc_', $data['reference_id'] );
		$this->assertSame( 'env_wptest123', $data['environment_id'] );
		$this->assertStringNotContainsString( self::fixtures()['bridge_token'], wp_json_encode( $data ) );

		// The bridge recorded the consent for this person and their WordPress id.
		$export = \KycBridge\Bridge_Client::from_settings()->export( $email );
		$this->assertSame( $data['reference_id'], $export['reference_id'] );
		$this->assertSame( $id, $export['wp_user_id'] );
		$this->assertSame( 'investor', $export['consents'][0]['user_type'] );
		$this->assertSame( self::fixtures()['consent_version'], $export['consents'][0]['text_version'] );
	}

	public function test_hosted_flow_answers_the_hosted_url() {
		$this->settings( array( 'flow' => 'hosted' ) );
		$this->log_in( 'rest-hosted@example.test' );
		$response = $this->post_session(
			array(
				'user_type' => 'customer',
				'consent'   => $this->consent(),
			),
			wp_create_nonce( 'wp_rest' )
		);
		$this->assertSame( 201, $response->get_status() );
		$data = $response->get_data();
		$this->assertSame( 'hosted', $data['flow'] );
		$this->assertStringStartsWith( self::fixtures()['hosted_flow_url'] . '?', $data['hosted_url'] );
		$query = array();
		parse_str( (string) wp_parse_url( $data['hosted_url'], PHP_URL_QUERY ), $query );
		$this->assertSame( self::fixtures()['templates']['customer'], $query['inquiry-template-id'] );
		$this->assertSame( $data['reference_id'], $query['reference-id'] );
		$this->assertSame( 'env_wptest123', $query['environment-id'] );
	}

	public function test_link_visitor_starts_a_session_with_the_link_token() {
		$response = $this->post_session(
			array(
				'link_token' => self::fixtures()['link_token'],
				'consent'    => $this->consent(),
			),
			wp_create_nonce( 'wp_rest' )
		);
		$this->assertSame( 201, $response->get_status(), wp_json_encode( $response->get_data() ) );
		$this->assertSame( self::fixtures()['templates'][ self::fixtures()['link_user_type'] ], $response->get_data()['template_id'] );
	}

	public function test_tampered_link_token_is_refused() {
		$response = $this->post_session(
			array(
				'link_token' => self::fixtures()['link_token'] . 'x',
				'consent'    => $this->consent(),
			),
			wp_create_nonce( 'wp_rest' )
		);
		$this->assertSame( 403, $response->get_status() );
		$this->assertSame( 'kycb_bad_link', $response->get_data()['code'] );
	}

	public function test_bridge_down_gives_503_without_details() {
		$this->log_in( 'rest-down@example.test' );
		$this->bridge_down();
		$response = $this->post_session(
			array(
				'user_type' => 'investor',
				'consent'   => $this->consent(),
			),
			wp_create_nonce( 'wp_rest' )
		);
		$this->assertSame( 503, $response->get_status() );
		$this->assertStringNotContainsString( '127.0.0.1', wp_json_encode( $response->get_data() ) );
	}

	public function test_status_route_needs_login_and_nonce_and_answers_from_the_bridge() {
		$request = new WP_REST_Request( 'GET', '/kyc-bridge/v1/status' );
		$request->set_header( 'X-WP-Nonce', wp_create_nonce( 'wp_rest' ) );
		$this->assertSame( 401, rest_do_request( $request )->get_status() );

		$this->log_in( self::fixtures()['people']['review']['email'] );
		$request = new WP_REST_Request( 'GET', '/kyc-bridge/v1/status' );
		$this->assertSame( 403, rest_do_request( $request )->get_status() );

		$request->set_header( 'X-WP-Nonce', wp_create_nonce( 'wp_rest' ) );
		$request->set_param( 'type', 'investor' );
		$response = rest_do_request( $request );
		$this->assertSame( 200, $response->get_status() );
		$this->assertSame( 'needs_review', $response->get_data()['status'] );
		$this->assertFalse( $response->get_data()['can_start'] );
	}
}
