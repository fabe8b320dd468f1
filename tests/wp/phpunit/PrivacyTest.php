<?php
/**
 * Personal-data exporter and eraser, backed by the bridge.
 *
 * @package KycBridge
 */

namespace KycBridge\Tests;

/**
 * Privacy tools.
 */
class PrivacyTest extends TestCase {

	/**
	 * Registered callback of a privacy tool.
	 *
	 * @param string $filter Filter name.
	 * @return callable
	 */
	private function tool( $filter ) {
		$tools = apply_filters( $filter, array() );
		$this->assertArrayHasKey( 'kyc-bridge', $tools );
		return $tools['kyc-bridge']['callback'];
	}

	public function test_exporter_returns_what_the_bridge_holds() {
		$person = self::fixtures()['people']['approved_investor'];
		$result = call_user_func( $this->tool( 'wp_privacy_personal_data_exporters' ), $person['email'], 1 );
		$this->assertTrue( $result['done'] );
		$values = array();
		foreach ( $result['data'] as $item ) {
			$this->assertSame( 'kyc-bridge', $item['group_id'] );
			foreach ( $item['data'] as $pair ) {
				$values[ $pair['value'] ] = $pair['name'];
			}
		}
		$this->assertArrayHasKey( $person['email'], $values );
		$this->assertArrayHasKey( $person['inquiry_id'], $values );
		$this->assertArrayHasKey( 'approved', $values );
	}

	public function test_exporter_for_an_unknown_email_is_empty() {
		$result = call_user_func( $this->tool( 'wp_privacy_personal_data_exporters' ), 'never-seen@example.test', 1 );
		$this->assertSame( array(), $result['data'] );
		$this->assertTrue( $result['done'] );
	}

	public function test_eraser_erases_at_the_bridge_and_reports_retained_decisions() {
		$person = self::fixtures()['people']['erase'];
		$eraser = $this->tool( 'wp_privacy_personal_data_erasers' );
		$result = call_user_func( $eraser, $person['email'], 1 );
		$this->assertTrue( $result['items_removed'] );
		$this->assertTrue( $result['items_retained'] );
		$this->assertTrue( $result['done'] );
		$this->assertStringContainsString( 'Retained for legal reasons: KYC decisions', implode( "\n", $result['messages'] ) );
		// Gone at the bridge: the exporter finds nothing now, and a second erasure removes nothing.
		$export = call_user_func( $this->tool( 'wp_privacy_personal_data_exporters' ), $person['email'], 1 );
		$this->assertSame( array(), $export['data'] );
		$again = call_user_func( $eraser, $person['email'], 1 );
		$this->assertFalse( $again['items_removed'] );
	}

	public function test_bridge_down_is_an_error_not_a_silent_success() {
		$this->bridge_down();
		$this->assertInstanceOf( \WP_Error::class, call_user_func( $this->tool( 'wp_privacy_personal_data_exporters' ), 'a@example.test', 1 ) );
		$this->assertInstanceOf( \WP_Error::class, call_user_func( $this->tool( 'wp_privacy_personal_data_erasers' ), 'a@example.test', 1 ) );
	}
}
